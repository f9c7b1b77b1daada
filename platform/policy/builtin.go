package policy

import (
	"errors"

	"github.com/picard-mcp/picard/vectorstore"
)

// The three built-in permission types register exactly as a plugin's would.

// Private memories are readable by their owner only.
type Private struct{}

// Public memories are readable by every signed-in user and feed personas.
type Public struct{}

// Shared memories are readable by the users and groups they name.
type Shared struct{}

var (
	_ Policy = Private{}
	_ Policy = Public{}
	_ Policy = Shared{}
)

// RegisterBuiltins registers private, public and shared.
func RegisterBuiltins(r *Registry) error {
	for _, p := range []Policy{Private{}, Public{}, Shared{}} {
		if err := r.Register(p); err != nil {
			return err
		}
	}
	return nil
}

var errNoSharing = errors.New("only shared memories take shared_with or shared_with_groups")

func noSharing(users, groups []string) error {
	if len(users) > 0 || len(groups) > 0 {
		return errNoSharing
	}
	return nil
}

func (Private) Name() string                                 { return "private" }
func (Private) Describe() string                             { return "only you can read it" }
func (Private) ValidateSharing(users, groups []string) error { return noSharing(users, groups) }
func (Private) CanRead(Viewer, Memory) bool                  { return false }
func (Private) Clauses(Viewer) []vectorstore.Clause          { return nil }
func (Public) Name() string                                  { return "public" }
func (Public) Describe() string                              { return "every user can read it, and it feeds your persona" }
func (Public) ValidateSharing(users, groups []string) error  { return noSharing(users, groups) }
func (Public) CanRead(Viewer, Memory) bool                   { return true }
func (Public) Clauses(Viewer) []vectorstore.Clause           { return []vectorstore.Clause{{}} }
func (Shared) Name() string                                  { return "shared" }
func (Shared) Describe() string                              { return "the users and groups you name can read it" }

// ValidateSharing requires at least one user or group.
func (Shared) ValidateSharing(users, groups []string) error {
	if len(users) == 0 && len(groups) == 0 {
		return errors.New("a shared memory needs at least one user in shared_with or group in shared_with_groups")
	}
	return nil
}

// CanRead is true when the viewer is named or belongs to a named group.
func (Shared) CanRead(v Viewer, m Memory) bool {
	for _, u := range m.SharedUsers {
		if u == v.UserID {
			return true
		}
	}
	for _, g := range m.SharedGroups {
		for _, vg := range v.Groups {
			if g == vg {
				return true
			}
		}
	}
	return false
}

// Clauses select shared memories naming the viewer or one of its groups.
func (Shared) Clauses(v Viewer) []vectorstore.Clause {
	return []vectorstore.Clause{{SharedWithUser: v.UserID, SharedWithGroups: v.Groups}}
}
