package vectorstore

import (
	"context"
	"sort"
)

// HybridOptions tune keyword search. DefaultHybridOptions holds the values
// measured best on the LoCoMo development split (see README).
type HybridOptions struct {
	K1, B float64 // BM25
	// IDFPower raises BM25's idf to this power: 2 lets one rare word of
	// a question (a name, a place) outrank several common ones, which on
	// short memories is most of the evidence (see KeywordQuery.IDFPower).
	IDFPower float64
	// Context lets a memory's neighbours in time (same owner, visible to
	// the viewer) lend it part of their keyword score: ContextNear × the
	// best of the ±1 neighbours plus ContextFar × the best of the ±2 ones.
	Context     bool
	ContextNear float64
	ContextFar  float64
	// ContextLenders: only the memories with the best own keyword scores
	// lend to their neighbours (0: all of them); see KeywordQuery.
	ContextLenders    int
	Candidates        int // hits of each list that enter fusion
	Budget            int // see KeywordQuery.Budget
	PRF               bool
	PRFDocs, PRFTerms int     // feedback from the top PRFDocs hits' best PRFTerms terms
	PRFWeight         float64 // query weight of an expansion term
	// RRFK and the weights fuse the keyword and dense lists: a memory
	// scores Σ weight/(RRFK + rank). The defaults (k 2, dense 0.4) keep
	// the keyword list's top ranks apart, where k 60 and equal weights
	// flatten them: measured on the dev split with stand-in embedders
	// (make locomo-fused, README), they lose at most 0.016 of recall@10
	// to keyword search when the dense signal only repeats keyword's
	// errors (k 60: 0.151) and still gain 0.04–0.10 when its errors are
	// its own.
	RRFK                   float64
	DenseWeight, KeyWeight float64
}

// DefaultHybridOptions returns the defaults.
func DefaultHybridOptions() HybridOptions {
	return HybridOptions{
		K1: 1.2, B: 0.3, IDFPower: 2,
		Context: true, ContextNear: 0.5, ContextFar: 0.5, ContextLenders: 50, Candidates: 50, Budget: 2000,
		PRF: false, PRFDocs: 3, PRFTerms: 5, PRFWeight: 0.1,
		RRFK: 2, DenseWeight: 0.4, KeyWeight: 1,
	}
}

// Signals say why a memory was returned.
type Signals struct {
	Keyword bool // it holds query terms
	Context bool // its neighbours in time do
	Dense   bool // the dense (embedding) search found it
}

// List names the signals for clients: keyword, context, dense.
func (s Signals) List() []string {
	out := []string{}
	if s.Keyword {
		out = append(out, "keyword")
	}
	if s.Context {
		out = append(out, "context")
	}
	if s.Dense {
		out = append(out, "dense")
	}
	return out
}

// RankedHit is a search result with its signals; Score is comparable only
// within one result list (higher is better).
type RankedHit struct {
	ID      string
	Score   float64
	Signals Signals
}

// Hybrid is keyword search with temporal context and optional
// pseudo-relevance feedback.
type Hybrid struct {
	Index  KeywordIndex
	Hasher *TermHasher
	Opts   HybridOptions
}

// QueryTerms hashes the query's distinct terms, each with weight 1 (a
// word repeated in a question is not more important).
func (h *Hybrid) QueryTerms(text string) map[int64]float64 {
	q := map[int64]float64{}
	for _, t := range Tokens(text) {
		q[h.Hasher.Hash(t)] = 1
	}
	return q
}

// Search returns up to limit memories passing f, best first.
func (h *Hybrid) Search(ctx context.Context, text string, f Filter, limit int) ([]RankedHit, error) {
	o := h.Opts
	terms := h.QueryTerms(text)
	if len(terms) == 0 || limit <= 0 {
		return nil, nil
	}
	if o.PRF {
		var err error
		if terms, err = h.feedback(ctx, terms, f); err != nil {
			return nil, err
		}
	}
	q := KeywordQuery{Terms: terms, Filter: f, Limit: limit, K1: o.K1, B: o.B, IDFPower: o.IDFPower, Budget: o.Budget}
	if o.Context {
		q.ContextNear, q.ContextFar, q.ContextLenders = o.ContextNear, o.ContextFar, o.ContextLenders
	}
	hits, err := h.Index.SearchKeywords(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]RankedHit, len(hits))
	for i, x := range hits {
		out[i] = RankedHit{ID: x.ID, Score: x.Score, Signals: Signals{
			Keyword: x.BM25 > 0,
			Context: q.ContextNear*x.Near+q.ContextFar*x.Far > 0,
		}}
	}
	normalise(out)
	return out, nil
}

// feedback expands the query with the top documents' most weighty terms
// and searches again.
func (h *Hybrid) feedback(ctx context.Context, terms map[int64]float64, f Filter) (map[int64]float64, error) {
	o := h.Opts
	top, err := h.Index.SearchKeywords(ctx, KeywordQuery{Terms: terms, Filter: f, Limit: o.PRFDocs, K1: o.K1, B: o.B, IDFPower: o.IDFPower, Budget: o.Budget})
	if err != nil || len(top) == 0 {
		return terms, err
	}
	ids := make([]string, len(top))
	for i, x := range top {
		ids[i] = x.ID
	}
	dt, err := h.Index.DocTerms(ctx, ids)
	if err != nil {
		return nil, err
	}
	tf := map[int64]int{}
	for _, m := range dt {
		for t, n := range m {
			if _, inQuery := terms[t]; !inQuery {
				tf[t] += n
			}
		}
	}
	if len(tf) == 0 {
		return terms, nil
	}
	list := make([]int64, 0, len(tf))
	for t := range tf {
		list = append(list, t)
	}
	df, n, _, err := h.Index.DocFreqs(ctx, list)
	if err != nil {
		return nil, err
	}
	type cand2 struct {
		t int64
		w float64
	}
	var cs []cand2
	for _, t := range list {
		if df[t] < 2 { // a term only the feedback document holds adds nothing
			continue
		}
		cs = append(cs, cand2{t, float64(tf[t]) * IDF(n, df[t])})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].w != cs[j].w {
			return cs[i].w > cs[j].w
		}
		return cs[i].t < cs[j].t
	})
	exp := make(map[int64]float64, len(terms)+o.PRFTerms)
	for t, w := range terms {
		exp[t] = w
	}
	for _, c := range cs[:min(o.PRFTerms, len(cs))] {
		exp[c.t] = o.PRFWeight
	}
	return exp, nil
}

// FuseRRF merges ranked lists by weighted reciprocal rank fusion: each list
// adds weight/(k+rank) to a memory's score (rank from 1). Signals are
// merged; the result is cut to limit.
func FuseRRF(k float64, limit int, weights []float64, lists ...[]RankedHit) []RankedHit {
	score := map[string]float64{}
	sig := map[string]Signals{}
	for li, l := range lists {
		w := 1.0
		if li < len(weights) {
			w = weights[li]
		}
		for r, x := range l {
			score[x.ID] += w / (k + float64(r+1))
			s := sig[x.ID]
			s.Keyword = s.Keyword || x.Signals.Keyword
			s.Context = s.Context || x.Signals.Context
			s.Dense = s.Dense || x.Signals.Dense
			sig[x.ID] = s
		}
	}
	out := make([]RankedHit, 0, len(score))
	for id, sc := range score {
		out = append(out, RankedHit{ID: id, Score: sc, Signals: sig[id]})
	}
	sortRanked(out)
	if len(out) > limit {
		out = out[:limit]
	}
	normalise(out)
	return out
}

func sortRanked(hs []RankedHit) {
	sort.Slice(hs, func(i, j int) bool {
		if hs[i].Score != hs[j].Score {
			return hs[i].Score > hs[j].Score
		}
		return hs[i].ID < hs[j].ID
	})
}

// normalise scales scores so the best is 1.
func normalise(hs []RankedHit) {
	if len(hs) == 0 || hs[0].Score <= 0 {
		return
	}
	top := hs[0].Score
	for i := range hs {
		hs[i].Score /= top
	}
}
