// Package vectorstore holds the embedding side of Picard: the Store interface
// with its backends (an embedded pure-Go store and pgvector) and the Embedders
// that turn text into vectors.
//
// The memory record in PocketBase is the source of truth; a Store is an index
// that can be rebuilt from it at any time. Every Item carries the metadata
// needed to filter by viewer (owner, permission, sharing, expiry), and every
// result is re-checked against the record by the caller.
package vectorstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrUnavailable wraps errors caused by the store's backend being unreachable.
var ErrUnavailable = errors.New("vector store unavailable")

// ErrSpaceMismatch is returned when a vector's length does not match its Space.
var ErrSpaceMismatch = errors.New("vector does not match embedding space")

// Space identifies an embedding space. Vectors of different spaces are never
// compared with each other.
type Space struct {
	Embedder string // "local", "openai"
	Model    string // e.g. "text-embedding-3-small"
	Dims     int
}

func (s Space) String() string { return fmt.Sprintf("%s/%s/%d", s.Embedder, s.Model, s.Dims) }

// Meta is the part of a memory kept beside its vector for filtering.
type Meta struct {
	OwnerID      string
	Permission   string
	SharedUsers  []string
	SharedGroups []string
	ExpiresAt    time.Time // zero: never expires
	CreatedAt    time.Time
}

// Item is one memory's vector plus its filter metadata.
type Item struct {
	ID     string
	Meta   Meta
	Vector []float32
}

// Clause is one way a viewer may read a memory. Empty fields do not constrain.
// A memory matches a clause when every non-empty field matches:
//   - Permission: memory.Permission == Permission
//   - OwnerID: memory.OwnerID == OwnerID
//   - SharedWithUser: SharedWithUser is in memory.SharedUsers
//   - SharedWithGroups: memory.SharedGroups overlaps SharedWithGroups; when
//     SharedWithUser is also set, either sharing form is enough.
type Clause struct {
	Permission       string
	OwnerID          string
	SharedWithUser   string
	SharedWithGroups []string
}

// Filter selects the memories a query may see. Permission policies produce
// the clauses (see platform/policy); the store only evaluates them.
type Filter struct {
	Any            []Clause // a memory must match at least one; empty matches nothing
	OwnerID        string   // optional: only this owner's memories
	Now            time.Time
	IncludeExpired bool // when false, memories with ExpiresAt <= Now are excluded
}

// Query is a similarity search inside one Space.
type Query struct {
	Space  Space
	Vector []float32
	Filter Filter
	Limit  int
}

// Hit is one search result; Score is cosine similarity (higher is closer).
type Hit struct {
	ID    string
	Score float64
}

// Store is a vector index filtered by memory metadata.
type Store interface {
	// Upsert inserts or replaces items in space.
	Upsert(ctx context.Context, space Space, items ...Item) error
	// SetMeta replaces an item's metadata without touching its vector;
	// it is a no-op for an unknown id.
	SetMeta(ctx context.Context, id string, meta Meta) error
	// Delete removes ids; unknown ids are ignored.
	Delete(ctx context.Context, ids ...string) error
	// Search returns up to q.Limit hits of q.Space that pass q.Filter, best
	// first. The filter is applied before ranking, so a selective filter
	// still yields Limit rows when that many match.
	Search(ctx context.Context, q Query) ([]Hit, error)
	// Count returns how many vectors the store holds in space.
	Count(ctx context.Context, space Space) (int, error)
	// Reset removes every vector of every space.
	Reset(ctx context.Context) error
	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// Embedder turns texts into vectors of one Space.
type Embedder interface {
	Space() Space
	// Embed returns one vector per text, in order, each L2-normalised.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Matches reports whether meta passes f. Backends that filter in Go use it;
// SQL backends must agree with it (tests compare them).
func (f Filter) Matches(m Meta) bool {
	if f.OwnerID != "" && m.OwnerID != f.OwnerID {
		return false
	}
	if !f.IncludeExpired && !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(f.Now) {
		return false
	}
	for _, c := range f.Any {
		if c.matches(m) {
			return true
		}
	}
	return false
}

func (c Clause) matches(m Meta) bool {
	if c.Permission != "" && m.Permission != c.Permission {
		return false
	}
	if c.OwnerID != "" && m.OwnerID != c.OwnerID {
		return false
	}
	if c.SharedWithUser == "" && len(c.SharedWithGroups) == 0 {
		return true
	}
	if c.SharedWithUser != "" && slices.Contains(m.SharedUsers, c.SharedWithUser) {
		return true
	}
	for _, g := range c.SharedWithGroups {
		if slices.Contains(m.SharedGroups, g) {
			return true
		}
	}
	return false
}
