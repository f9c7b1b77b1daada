package memories

import (
	"context"
	"fmt"
	"sync"

	"github.com/pocketbase/pocketbase/core"
)

// saveBatch is the most memory writes one SQLite transaction commits.
const saveBatch = 64

// saveGroup is group commit for memory writes: concurrent writers' records
// are saved in one SQLite transaction (one commit, one WAL append) instead
// of one each, and every writer is answered only after that commit, so an
// acknowledged write is as durable as before. One waiting writer at a time
// leads: it commits batches until its own record is in, then hands the lead
// to the first writer still waiting.
//
// A record whose save fails (a hook refuses it, a constraint) is answered
// with its own error; SQLite undoes only that statement and the others of
// the batch still commit. Only a failure of the transaction itself (BEGIN
// or COMMIT) fails the whole batch, and then nobody is acknowledged.
type saveGroup struct {
	mu      sync.Mutex
	queue   []*saveWait
	running bool
}

type saveWait struct {
	ctx context.Context
	rec *core.Record
	// edit, when set, loads and changes the record inside the batch's
	// transaction (rec is then what it returned): an update reads its row
	// on the write connection, whose page cache every commit keeps warm,
	// instead of on a read connection whose cache the last commit emptied.
	edit func(tx core.App) (*core.Record, error)
	// row is rec's INSERT for directInsert, prepared by the writer
	row  *insertRow
	done chan error
	lead chan struct{}
}

// save writes a memory the service has validated: its owner is the
// authenticated caller, text, permission, sharing (ids checked to exist)
// and expiry went through validText, validSharing and validExpiry, and a
// new one has a fresh UUID v7. PocketBase's own record validation would
// repeat that at a cost on every write (it compiles the id's and the
// permission's patterns and queries the owner and the new id); the
// dashboard and the records API keep it. A new memory is written by
// directInsert, which does what its create hooks would (Fernet
// encryption, the outbox's pending mark; prepared here, in the writer's
// goroutine) and runs the after-create hooks; anything else goes through
// PocketBase's save with every hook.
func (s *Service) save(ctx context.Context, rec *core.Record) error {
	w := s.newSave(ctx, rec)
	err := s.commitWait(w)
	s.saved(w, err)
	return err
}

// newSave is rec's place in the group commit: with its INSERT prepared
// when directInsert can write it (in the writer's goroutine, so the
// batch's leader only runs the statements).
func (s *Service) newSave(ctx context.Context, rec *core.Record) *saveWait {
	w := &saveWait{ctx: indexedByCaller(ctx), rec: rec}
	if directInsertable(rec) {
		w.row = s.prepareInsert(rec)
	}
	return w
}

// saveEdit is save for a record that edit loads and changes inside the
// transaction; an error of edit (the memory is not the caller's) is
// returned as it is and nothing is written for that write.
func (s *Service) saveEdit(ctx context.Context, edit func(tx core.App) (*core.Record, error)) (*core.Record, error) {
	w := &saveWait{ctx: indexedByCaller(ctx), edit: edit}
	if err := s.commitWait(w); err != nil {
		return nil, err
	}
	return w.rec, nil
}

// commitWait queues w for the group commit and waits for its outcome.
func (s *Service) commitWait(w *saveWait) error {
	w.done, w.lead = make(chan error, 1), make(chan struct{}, 1)
	g := &s.saves
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if !g.running {
		g.running = true
		w.lead <- struct{}{}
	}
	g.mu.Unlock()
	for {
		// a queued write is not abandoned when its caller goes away: it
		// may already be in a transaction
		select {
		case err := <-w.done:
			return err
		case <-w.lead:
			s.leadSaves(w)
		}
	}
}

// leadSaves commits batches until own's is done, then passes the lead on.
func (s *Service) leadSaves(own *saveWait) {
	g := &s.saves
	for {
		g.mu.Lock()
		n := min(len(g.queue), saveBatch)
		batch := g.queue[:n:n]
		g.queue = g.queue[n:]
		g.mu.Unlock()
		mine := false
		if n > 0 {
			s.commitSaves(batch)
			for _, w := range batch {
				mine = mine || w == own
			}
		}
		if n == 0 || mine {
			g.mu.Lock()
			if len(g.queue) > 0 {
				g.queue[0].lead <- struct{}{}
			} else {
				g.running = false
			}
			g.mu.Unlock()
			return
		}
	}
}

// commitSaves commits a batch: new memories by directInsert, the rest
// (updates, records it cannot take) through PocketBase's save. Each part
// is one transaction; a writer is answered after its part's commit.
func (s *Service) commitSaves(batch []*saveWait) {
	var direct, hooked []*saveWait
	for _, w := range batch {
		if w.row != nil {
			direct = append(direct, w)
		} else {
			hooked = append(hooked, w)
		}
	}
	if len(direct) > 0 && !s.directInsert(direct) {
		// no plain write pool: the hooked path, which encrypts the text
		// itself
		for _, w := range direct {
			if w.row != nil {
				w.rec.Set("text", w.row.plain)
				w.row = nil
			}
		}
		hooked = append(hooked, direct...)
	}
	if len(hooked) > 0 {
		s.saveHooked(hooked)
	}
}

// saveHooked saves batch with PocketBase's SaveNoValidate in one
// transaction: every hook bound to the memories' saves runs.
func (s *Service) saveHooked(batch []*saveWait) {
	errs := make([]error, len(batch))
	txErr := func() (err error) {
		// a panicking hook must not leave the other writers waiting
		// forever: the transaction is rolled back and all are refused
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("save memory: panic: %v", p)
			}
		}()
		return s.app.RunInTransaction(func(tx core.App) error {
			for i, w := range batch {
				if w.edit != nil {
					rec, err := w.edit(tx)
					if err != nil {
						errs[i] = err
						continue
					}
					w.rec = rec
				}
				errs[i] = tx.SaveNoValidateWithContext(w.ctx, w.rec)
			}
			return nil
		})
	}()
	for i, w := range batch {
		if txErr != nil {
			w.done <- txErr // nothing of the batch was written
			continue
		}
		w.done <- errs[i]
	}
}
