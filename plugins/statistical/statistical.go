// Package statistical is the worked example of a permission plugin: the
// "statistical" permission type lets a memory count in aggregate statistics
// without anyone but its owner ever reading its text. It touches no core
// code: it implements policy.Policy and registers itself.
package statistical

import (
	"errors"

	"github.com/picard-mcp/picard/platform/policy"
	"github.com/picard-mcp/picard/vectorstore"
)

// Name is the permission value this plugin adds.
const Name = "statistical"

// Policy is the statistical permission type.
type Policy struct{}

var _ policy.Policy = Policy{}

// Register adds the type to the platform's registry.
func Register(r *policy.Registry) error { return r.Register(Policy{}) }

// Name implements policy.Policy.
func (Policy) Name() string { return Name }

// Describe implements policy.Policy.
func (Policy) Describe() string {
	return "only you can read it; it may be counted, never shown, in aggregate statistics"
}

// ValidateSharing refuses sharing lists: nobody else reads the text.
func (Policy) ValidateSharing(users, groups []string) error {
	if len(users) > 0 || len(groups) > 0 {
		return errors.New("statistical memories cannot be shared with anyone")
	}
	return nil
}

// CanRead is false for everyone but the owner (the registry handles owners).
func (Policy) CanRead(policy.Viewer, policy.Memory) bool { return false }

// Clauses select nothing: search never returns another user's statistical memory.
func (Policy) Clauses(policy.Viewer) []vectorstore.Clause { return nil }

// Aggregatable marks memories that aggregate statistics may count.
func (Policy) Aggregatable() bool { return true }
