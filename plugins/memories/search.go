package memories

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/vectorstore"
)

// setupSearch opens the keyword index when the store keeps one and
// decides whether queries also run the dense search.
func (s *Service) setupSearch(app core.App, cfg Config) error {
	switch cfg.Dense {
	case "", "auto":
		s.dense = s.embedder.Space().Embedder != vectorstore.LocalSpace.Embedder
	case "on":
		s.dense = true
	case "off":
		s.dense = false
	default:
		return fmt.Errorf("memories: Dense must be auto, on or off, not %q", cfg.Dense)
	}
	kp, ok := s.store.(vectorstore.KeywordProvider)
	if !ok {
		s.dense = true // a store without a keyword index: dense search only
		s.warmDense(app)
		return nil
	}
	idx, err := kp.Keywords()
	if err != nil {
		return fmt.Errorf("memories: keyword index: %w", err)
	}
	key := cfg.KeywordKey
	if key == nil {
		if key, err = vectorstore.LoadOrCreateKeywordKey(filepath.Join(app.DataDir(), "keyword.key")); err != nil {
			return fmt.Errorf("memories: %w", err)
		}
	}
	h, err := vectorstore.NewTermHasher(key)
	if err != nil {
		return fmt.Errorf("memories: %w", err)
	}
	opts := vectorstore.DefaultHybridOptions()
	if cfg.Search != nil {
		opts = *cfg.Search
	}
	s.keywords = idx
	s.hybrid = &vectorstore.Hybrid{Index: idx, Hasher: h, Opts: opts}
	s.warmDense(app)
	return nil
}

// warmDense builds the store's approximate dense index in the background
// when dense search is on, so the first query after a start does not pay
// for reading every vector (seconds at 100k memories).
func (s *Service) warmDense(app core.App) {
	w, ok := s.store.(interface {
		WarmDenseIndex(context.Context, vectorstore.Space) error
	})
	if !s.dense || !ok {
		return
	}
	space := s.embedder.Space()
	go func() {
		if err := w.WarmDenseIndex(context.Background(), space); err != nil {
			app.Logger().Warn("dense index not warmed at start; the first dense query builds it", "error", err)
		}
	}()
}

// WarmKeywords loads the keyword index's in-process postings cache, when
// it keeps one, so the first searches after a start are not slower.
func (s *Service) WarmKeywords(ctx context.Context) {
	if w, ok := s.keywords.(interface{ WarmKeywords(context.Context) }); ok {
		w.WarmKeywords(ctx)
	}
}

// keywordDocs hashes texts into keyword index documents.
func (s *Service) keywordDocs(rows []memoryRow, texts []string) []vectorstore.KeywordDoc {
	docs := make([]vectorstore.KeywordDoc, len(rows))
	for i := range rows {
		terms, n := s.hybrid.Hasher.TermCounts(texts[i])
		docs[i] = vectorstore.KeywordDoc{ID: rows[i].ID, Meta: metaOfRow(&rows[i]), Terms: terms, Len: n}
	}
	return docs
}

// rank runs the keyword search (with context and feedback) and, when on,
// the dense search, fusing the two by reciprocal rank.
func (s *Service) rank(ctx context.Context, query string, filter vectorstore.Filter, want int) ([]vectorstore.RankedHit, error) {
	var lists [][]vectorstore.RankedHit
	var weights []float64
	if s.hybrid != nil {
		n := want
		if s.dense {
			n = max(want, s.hybrid.Opts.Candidates)
		}
		kh, err := s.hybrid.Search(ctx, query, filter, n)
		if err != nil {
			slog.Warn("keyword search failed", "error", err)
			e := *ErrSearchUnavailable
			e.Err = err
			return nil, &e
		}
		lists = append(lists, kh)
		weights = append(weights, s.hybrid.Opts.KeyWeight)
	}
	if s.dense {
		vecs, err := s.embedder.Embed(ctx, []string{query})
		if err != nil {
			return nil, &Error{Code: CodeUnavailable, Message: "search temporarily unavailable: the embedder failed", Err: err}
		}
		n := want
		if s.hybrid != nil {
			n = max(want, s.hybrid.Opts.Candidates)
		}
		hits, err := s.store.Search(ctx, vectorstore.Query{Space: s.embedder.Space(), Vector: vecs[0], Filter: filter, Limit: n})
		if err != nil {
			slog.Warn("vector search failed", "error", err)
			e := *ErrSearchUnavailable
			e.Err = err
			return nil, &e
		}
		dl := make([]vectorstore.RankedHit, len(hits))
		for i, h := range hits {
			dl[i] = vectorstore.RankedHit{ID: h.ID, Score: h.Score, Signals: vectorstore.Signals{Dense: true}}
		}
		lists = append(lists, dl)
		w := 1.0
		if s.hybrid != nil {
			w = s.hybrid.Opts.DenseWeight
		}
		weights = append(weights, w)
	}
	if len(lists) == 1 {
		l := lists[0]
		if len(l) > want {
			l = l[:want]
		}
		return l, nil
	}
	k := 60.0
	if s.hybrid != nil && s.hybrid.Opts.RRFK > 0 {
		k = s.hybrid.Opts.RRFK
	}
	return vectorstore.FuseRRF(k, want, weights, lists...), nil
}
