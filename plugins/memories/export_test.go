package memories

import (
	"context"

	"github.com/pocketbase/pocketbase/core"
)

// SaveBatch commits recs as one group-commit batch and returns each one's
// outcome (tests).
func (s *Service) SaveBatch(ctx context.Context, recs []*core.Record) []error {
	batch := make([]*saveWait, len(recs))
	for i, r := range recs {
		batch[i] = &saveWait{ctx: indexedByCaller(ctx), rec: r, done: make(chan error, 1)}
	}
	s.commitSaves(batch)
	errs := make([]error, len(recs))
	for i, w := range batch {
		errs[i] = <-w.done
	}
	return errs
}

// MarkReadySQL is markReadySQL (tests).
const MarkReadySQL = markReadySQL

// MarkReady is markReady (tests).
func (s *Service) MarkReady(recs []*core.Record) error { return s.markReady(recs) }
