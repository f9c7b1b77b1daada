package memories

import (
	"context"
	"time"

	"github.com/pocketbase/pocketbase/core"
)

// SaveBatch commits recs as one group-commit batch and returns each one's
// outcome (tests).
func (s *Service) SaveBatch(ctx context.Context, recs []*core.Record) []error {
	batch := make([]*saveWait, len(recs))
	for i, r := range recs {
		batch[i] = s.newSave(ctx, r)
		batch[i].done = make(chan error, 1)
	}
	s.commitSaves(batch)
	errs := make([]error, len(recs))
	for i, w := range batch {
		errs[i] = <-w.done
		s.saved(w, errs[i])
	}
	return errs
}

// MarkReadySQL is markReadySQL (tests); its parameter is ?1.
const MarkReadySQL = markReadySQL

// MarkReady is markReady of the memories as loaded for indexing, ids[i]
// with the updated time loaded[i] (tests).
func (s *Service) MarkReady(ids, loaded []string) error {
	rows := make([]memoryRow, len(ids))
	for i := range ids {
		rows[i] = memoryRow{ID: ids[i], Updated: loaded[i]}
	}
	return s.markReady(rows)
}

// UpdateTextBatch commits, as one group-commit batch, updates of the text
// of ids[i] by owners[i] to texts[i], each loaded inside the transaction as
// Update does, and returns each one's outcome (tests).
func (s *Service) UpdateTextBatch(ctx context.Context, owners, ids, texts []string) []error {
	batch := make([]*saveWait, len(ids))
	for i := range ids {
		batch[i] = &saveWait{ctx: indexedByCaller(ctx), done: make(chan error, 1), edit: func(tx core.App) (*core.Record, error) {
			rec, err := s.ownRecordIn(tx, owners[i], ids[i])
			if err != nil {
				return nil, err
			}
			rec.Set("text", texts[i])
			return rec, nil
		}}
	}
	s.commitSaves(batch)
	errs := make([]error, len(ids))
	for i, w := range batch {
		errs[i] = <-w.done
	}
	return errs
}

// IndexPendingBefore is the reconciler's pass over the memories pending
// since before (tests).
func (s *Service) IndexPendingBefore(ctx context.Context, before time.Time) (int, error) {
	return s.indexAllPending(ctx, before, nil)
}

// LoadForIndex returns the ids of the memories the indexer loads for ids,
// in the order read (tests).
func (s *Service) LoadForIndex(ids []string) ([]string, error) {
	rows, err := s.loadForIndex(ids)
	out := make([]string, len(rows))
	for i := range rows {
		out[i] = rows[i].ID
	}
	return out, err
}

// HitRowQueries counts the statements query_memory ran to read its hits'
// rows (tests).
func (s *Service) HitRowQueries() int64 {
	if s.pages == nil || s.pages.hitc == nil {
		return 0
	}
	return s.pages.hitc.rowQueries.Load()
}

// HitCacheNoOwnerScan makes the hit cache read the owners' counters each
// query needs instead of every owner's once per data version (tests).
func (s *Service) HitCacheNoOwnerScan() {
	if pc := s.pageCacheFor(); pc != nil {
		pc.hitc.tooMany.Store(true)
	}
}

// HitMisses is how many memories searches have looked up in the hit cache
// and not found current (tests).
func (s *Service) HitMisses() int64 {
	if s.pages == nil || s.pages.hitc == nil {
		return 0
	}
	return s.pages.hitc.misses.Load()
}

// SetIndexLinger sets how long a busy indexer holds its next pass (tests).
func (s *Service) SetIndexLinger(d time.Duration) {
	s.idx.mu.Lock()
	s.idx.linger = d
	s.idx.mu.Unlock()
}

// SetSearchWaitMax sets how long a search waits for its writes' pass and
// returns the previous bound (tests; set it before the server starts).
func SetSearchWaitMax(d time.Duration) time.Duration {
	prev := searchWaitMax
	searchWaitMax = d
	return prev
}

// IndexPasses counts the indexer's passes so far (tests).
func (s *Service) IndexPasses() uint64 {
	s.idx.mu.Lock()
	defer s.idx.mu.Unlock()
	return s.idx.passes
}

// CloseIndexer stops the indexer as the app's termination does (tests).
func (s *Service) CloseIndexer() { s.closeIndexer() }

// EncodingLinked says whether r, a page made again from its cached copy,
// will take its kept memories' JSON from the older page's encoding
// (tests).
func (r *ListResult) EncodingLinked() bool { return r.enc != nil && r.enc.base != nil }
