// Package policy is the permission-policy registry owned by the platform.
//
// Every permission type a memory can carry ("private", "public", "shared",
// or a plugin's own) is one Policy. The registry answers two questions with
// the same policies, so they can never disagree: may this viewer read this
// memory (CanRead, used to re-check every result against the record), and
// which vector-store clauses select what this viewer may read (Filter).
package policy

import (
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/picard-mcp/picard/vectorstore"
)

// Viewer is the user asking to read memories.
type Viewer struct {
	UserID string
	Groups []string // ids of the groups the viewer belongs to
}

// Memory is what a policy needs to know about a memory.
type Memory struct {
	OwnerID      string
	Permission   string
	SharedUsers  []string
	SharedGroups []string
}

// Policy is one permission type. The owner of a memory may always read it;
// a policy only decides for everybody else.
type Policy interface {
	// Name is the value stored in a memory's permission field.
	Name() string
	// Describe is one sentence for users and tool descriptions.
	Describe() string
	// ValidateSharing checks the sharing lists of a memory of this type.
	ValidateSharing(users, groups []string) error
	// CanRead reports whether a viewer who is not the owner may read m.
	CanRead(v Viewer, m Memory) bool
	// Clauses select, in the vector store, the memories of this type that
	// a non-owner viewer may read. They must agree with CanRead.
	Clauses(v Viewer) []vectorstore.Clause
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{1,31}$`)

// Registry holds the registered policies. It is safe for concurrent use.
type Registry struct {
	mu       sync.RWMutex
	policies map[string]Policy
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{policies: map[string]Policy{}}
}

// Register adds p; a second policy with the same name is an error.
func (r *Registry) Register(p Policy) error {
	name := p.Name()
	if !namePattern.MatchString(name) {
		return fmt.Errorf("policy: invalid permission name %q (want %s)", name, namePattern)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.policies[name]; dup {
		return fmt.Errorf("policy: permission %q is already registered", name)
	}
	r.policies[name] = p
	return nil
}

// MustRegister is Register that panics; for use at start-up only.
func (r *Registry) MustRegister(p Policy) {
	if err := r.Register(p); err != nil {
		panic(err)
	}
}

// Get returns the policy named name.
func (r *Registry) Get(name string) (Policy, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.policies[name]
	return p, ok
}

// Names lists the registered permission names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

func (r *Registry) namesLocked() []string {
	names := make([]string, 0, len(r.policies))
	for n := range r.policies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CanRead reports whether v may read m: always for the owner, otherwise as
// m's policy says. An unknown permission type is readable by the owner only.
func (r *Registry) CanRead(v Viewer, m Memory) bool {
	if v.UserID != "" && v.UserID == m.OwnerID {
		return true
	}
	p, ok := r.Get(m.Permission)
	return ok && p.CanRead(v, m)
}

// Filter returns the vector-store filter for what v may read at now: the
// viewer's own memories plus every policy's clauses.
func (r *Registry) Filter(v Viewer, now time.Time) vectorstore.Filter {
	f := vectorstore.Filter{Now: now}
	if v.UserID == "" {
		return f
	}
	f.Any = append(f.Any, vectorstore.Clause{OwnerID: v.UserID})
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, n := range r.namesLocked() {
		for _, c := range r.policies[n].Clauses(v) {
			c.Permission = n // a policy can only select its own type
			f.Any = append(f.Any, c)
		}
	}
	return f
}
