package vectorstore

import (
	"container/heap"
	"fmt"
	"math"
	"sort"
)

// The embedded store's approximate dense search: int8 scalar quantisation
// with exact rescoring.
//
// Each vector of a space is kept in memory as dims signed bytes plus one
// float32 scale (its largest absolute coordinate / 127): a quarter of the
// float32 size. A query is quantised the same way and every memory that
// passes the filter is scored by an int8 dot product; the best
// annCandidates(limit) of them are then rescored exactly with their float32
// vectors read back from the log on disk, and the best limit of those are
// returned with exact cosine scores.
//
// The filter is evaluated before any cut, on every memory, so a selective
// filter (one owner, a share) never loses matches to a top-k taken before
// filtering; when no more memories match than there are candidates the
// result is exactly the exact scan's. The approximation can only reorder
// memories whose quantised scores fall outside the candidate window, which
// the recall figures in README ("Dense index") measure against the exact
// scan.
//
// The index is built on the first dense query of a space (reading every
// vector of it from disk once) and kept current by every Upsert, Delete
// and Reset afterwards; until then the store holds no vector in memory.

const (
	// annOversample × limit candidates are rescored exactly, but never
	// fewer than annMinCandidates.
	annOversample    = 4
	annMinCandidates = 100
)

func annCandidates(limit int) int { return max(limit*annOversample, annMinCandidates) }

// annIndex holds one space's quantised vectors, slot for slot with its
// spaceIndex.
type annIndex struct {
	dims   int
	codes  []int8 // len(scales)*dims
	scales []float32
}

func newANNIndex(dims, capacity int) *annIndex {
	return &annIndex{dims: dims, codes: make([]int8, 0, capacity*dims), scales: make([]float32, 0, capacity)}
}

// set stores v (normalised) in slot i; i == len appends.
func (a *annIndex) set(i int, v []float32) {
	if i == len(a.scales) {
		a.codes = append(a.codes, make([]int8, a.dims)...)
		a.scales = append(a.scales, 0)
	}
	a.scales[i] = quantize(a.codes[i*a.dims:(i+1)*a.dims], v)
}

// removeSwap moves the last slot into slot i and drops the last slot (the
// spaceIndex's swap-remove).
func (a *annIndex) removeSwap(i int) {
	last := len(a.scales) - 1
	if i != last {
		copy(a.codes[i*a.dims:(i+1)*a.dims], a.codes[last*a.dims:])
		a.scales[i] = a.scales[last]
	}
	a.codes = a.codes[:last*a.dims]
	a.scales = a.scales[:last]
}

// quantize writes v as int8 codes into dst and returns the scale that maps
// a code back to a coordinate.
func quantize(dst []int8, v []float32) float32 {
	var m float32
	for _, x := range v {
		m = max(m, float32(math.Abs(float64(x))))
	}
	if m == 0 {
		clear(dst)
		return 0
	}
	inv := 127 / m
	for i, x := range v {
		dst[i] = int8(math.Round(float64(x * inv)))
	}
	return m / 127
}

// dotInt8 is the inner product of two equally long code vectors.
func dotInt8(a, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		s0 += int32(a[i])*int32(b[i]) + int32(a[i+4])*int32(b[i+4])
		s1 += int32(a[i+1])*int32(b[i+1]) + int32(a[i+5])*int32(b[i+5])
		s2 += int32(a[i+2])*int32(b[i+2]) + int32(a[i+6])*int32(b[i+6])
		s3 += int32(a[i+3])*int32(b[i+3]) + int32(a[i+7])*int32(b[i+7])
	}
	for ; i < len(a); i++ {
		s0 += int32(a[i]) * int32(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// buildANNLocked quantises every vector of idx, reading them from the log.
// The caller holds the write lock.
func (s *EmbeddedStore) buildANNLocked(idx *spaceIndex) error {
	a := newANNIndex(idx.dims, len(idx.ids))
	buf := make([]byte, 4*idx.dims)
	v := make([]float32, idx.dims)
	for i := range idx.ids {
		if err := s.readVector(idx.offs[i], buf, v); err != nil {
			return fmt.Errorf("build dense index: %w", err)
		}
		a.set(i, v)
	}
	idx.ann = a
	return nil
}

// searchANN runs the quantised scan and the exact rescoring over idx; the
// caller holds the read lock and idx.ann is built.
func (s *EmbeddedStore) searchANN(idx *spaceIndex, qv []float32, q Query) ([]Hit, error) {
	a := idx.ann
	d := idx.dims
	qc := make([]int8, d)
	quantize(qc, qv)
	ncand := annCandidates(q.Limit)
	h := make(hitHeap, 0, min(ncand, len(idx.ids)))
	for i, m := range idx.metas {
		if !q.Filter.Matches(m) {
			continue
		}
		c := scored{score: a.scales[i] * float32(dotInt8(qc, a.codes[i*d:(i+1)*d:(i+1)*d])), id: idx.ids[i], slot: i}
		if len(h) < ncand {
			heap.Push(&h, c)
		} else if worse(h[0], c) {
			h[0] = c
			heap.Fix(&h, 0)
		}
	}
	// exact rescoring of the candidates from the float32 vectors on disk
	buf := make([]byte, 4*d)
	v := make([]float32, d)
	exact := make([]scored, 0, len(h))
	for _, c := range h {
		if err := s.readVector(idx.offs[c.slot], buf, v); err != nil {
			return nil, fmt.Errorf("embedded search: %w", err)
		}
		exact = append(exact, scored{score: dot(qv, v), id: c.id})
	}
	sort.Slice(exact, func(i, j int) bool { return worse(exact[j], exact[i]) })
	exact = exact[:min(q.Limit, len(exact))]
	hits := make([]Hit, len(exact))
	for i, c := range exact {
		hits[i] = Hit{ID: c.id, Score: float64(c.score)}
	}
	return hits, nil
}
