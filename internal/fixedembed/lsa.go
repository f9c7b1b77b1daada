// Package fixedembed serves fixed embeddings through the OpenAI embeddings
// API on loopback, as stand-ins for a semantic embedder in benchmarks and
// tests (the real embedding APIs cannot be reached from here). Two models:
//
//   - LSA, latent semantic analysis fitted on a corpus (a truncated SVD of
//     its weighted term–memory matrix): it relates words that occur in the
//     same memories, but knows nothing the corpus's words do not say, so
//     its errors are those of keyword search;
//   - Table, vectors fixed in advance for known texts, e.g. simulated
//     embeddings of a chosen quality whose errors are independent of
//     keyword search's.
//
// Either way the same text always gets the same vector.
package fixedembed

import (
	"errors"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/picard-mcp/picard/vectorstore"
)

// LSA maps texts to unit vectors of Dims components.
type LSA struct {
	vocab map[string]int // term -> column
	idf   []float64
	proj  *mat.Dense // terms × Dims: the right singular vectors
	Dims  int
}

// Fit builds a model of at most dims components from the corpus. Terms of
// fewer than two texts are left out (they relate nothing). The fit is
// deterministic for a given corpus, dims and seed.
func Fit(corpus []string, dims int, seed uint64) (*LSA, error) {
	if dims <= 0 {
		return nil, errors.New("fixedembed: dims must be positive")
	}
	docs := make([]map[string]int, len(corpus))
	df := map[string]int{}
	for i, text := range corpus {
		tf := map[string]int{}
		for _, t := range vectorstore.Tokens(text) {
			tf[t]++
		}
		for t := range tf {
			df[t]++
		}
		docs[i] = tf
	}
	m := &LSA{vocab: map[string]int{}}
	for t, n := range df {
		if n >= 2 {
			m.vocab[t] = 0
		}
	}
	// columns in a fixed order, so the fit does not depend on map order
	terms := make([]string, 0, len(m.vocab))
	for t := range m.vocab {
		terms = append(terms, t)
	}
	sortStrings(terms)
	m.idf = make([]float64, len(terms))
	for j, t := range terms {
		m.vocab[t] = j
		m.idf[j] = math.Log(float64(len(corpus)+1) / float64(df[t]))
	}
	nd, nt := len(docs), len(terms)
	if nd < 2 || nt < 2 {
		return nil, errors.New("fixedembed: the corpus is too small to fit")
	}
	a := mat.NewDense(nd, nt, nil)
	for i, tf := range docs {
		m.weigh(tf, a.RawRowView(i))
	}
	k := min(dims, nd, nt)
	m.proj = rightSingular(a, k, seed)
	m.Dims = k
	return m, nil
}

// weigh writes the unit-length log(1+tf)·idf vector of tf into row.
func (m *LSA) weigh(tf map[string]int, row []float64) {
	var norm float64
	for t, n := range tf {
		if j, ok := m.vocab[t]; ok {
			w := math.Log1p(float64(n)) * m.idf[j]
			row[j] = w
			norm += w * w
		}
	}
	if norm > 0 {
		s := 1 / math.Sqrt(norm)
		for j := range row {
			row[j] *= s
		}
	}
}

// Embed returns text's unit vector. A text with no known term gets a fixed
// vector along the first component.
func (m *LSA) Embed(text string) ([]float32, bool) {
	tf := map[string]int{}
	for _, t := range vectorstore.Tokens(text) {
		tf[t]++
	}
	row := make([]float64, len(m.idf))
	m.weigh(tf, row)
	z := mat.NewVecDense(m.Dims, nil)
	z.MulVec(m.proj.T(), mat.NewVecDense(len(row), row))
	out := make([]float32, m.Dims)
	n := mat.Norm(z, 2)
	if n == 0 {
		out[0] = 1
		return out, true
	}
	for i := range out {
		out[i] = float32(z.AtVec(i) / n)
	}
	return out, true
}

// Len returns the vector length.
func (m *LSA) Len() int { return m.Dims }

// rightSingular returns the k leading right singular vectors of a (as the
// columns of a cols(a) × k matrix), by a randomised range finder with two
// power iterations and an exact SVD of the small projected matrix.
func rightSingular(a *mat.Dense, k int, seed uint64) *mat.Dense {
	rows, cols := a.Dims()
	l := min(k+20, rows, cols)                                  // oversampling
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) //nolint:gosec // seeded on purpose: a deterministic fit
	omega := mat.NewDense(cols, l, nil)
	for i := range cols {
		for j := range l {
			omega.Set(i, j, rng.NormFloat64())
		}
	}
	var y mat.Dense
	y.Mul(a, omega) // rows × l
	q := orth(&y)
	for range 2 {
		var z mat.Dense
		z.Mul(a.T(), q) // cols × l
		zq := orth(&z)
		var y2 mat.Dense
		y2.Mul(a, zq)
		q = orth(&y2)
	}
	var b mat.Dense
	b.Mul(q.T(), a) // l × cols
	var svd mat.SVD
	if !svd.Factorize(&b, mat.SVDThin) {
		panic("fixedembed: SVD did not converge")
	}
	var v mat.Dense
	svd.VTo(&v) // cols × l, by falling singular value
	out := mat.NewDense(cols, k, nil)
	out.Copy(v.Slice(0, cols, 0, k))
	return out
}

// orth returns an orthonormal basis of y's columns (thin QR).
func orth(y *mat.Dense) *mat.Dense {
	r, c := y.Dims()
	var qr mat.QR
	qr.Factorize(y)
	var q mat.Dense
	qr.QTo(&q)
	return mat.DenseCopyOf(q.Slice(0, r, 0, c))
}
