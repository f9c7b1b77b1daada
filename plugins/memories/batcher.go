package memories

import (
	"context"
	"slices"
	"sync"
)

type indexedByCallerKey struct{}

// indexedByCaller marks a save whose caller indexes the memory itself right
// after (indexNow, which kicks the reconciler only if that fails), so the
// save does not also wake the reconciler to index the same memory.
func indexedByCaller(ctx context.Context) context.Context {
	return context.WithValue(ctx, indexedByCallerKey{}, true)
}

func isIndexedByCaller(ctx context.Context) bool {
	v, _ := ctx.Value(indexedByCallerKey{}).(bool)
	return v
}

// indexBatcher is group commit for indexNow: concurrent writers' memories
// are embedded, upserted and marked ready together (one embedder call, one
// vector-store write and one SQLite transaction per batch) instead of once
// each. One waiting writer at a time leads: it indexes batches until its
// own memory is done, then hands the lead to the next writer in the queue.
// Every writer returns only once its own memory was indexed (or failed),
// so it still finds its memory in search as soon as its call returns.
type indexBatcher struct {
	mu      sync.Mutex
	queue   []*indexWait
	running bool // a writer is leading
}

type indexWait struct {
	id   string
	done chan error    // the memory's outcome
	lead chan struct{} // this writer is now the leader
}

// indexNowBatched indexes id together with whatever other writers queued.
func (s *Service) indexNowBatched(ctx context.Context, id string) error {
	w := &indexWait{id: id, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	b := &s.batcher
	b.mu.Lock()
	b.queue = append(b.queue, w)
	if !b.running {
		b.running = true
		w.lead <- struct{}{}
	}
	b.mu.Unlock()
	for {
		select {
		case err := <-w.done:
			return err
		case <-w.lead:
			s.leadIndexing(ctx, w)
		case <-ctx.Done():
			b.mu.Lock()
			if i := slices.Index(b.queue, w); i >= 0 { // not taken yet: leave
				b.queue = slices.Delete(b.queue, i, i+1)
			}
			select {
			case <-w.lead: // the lead came with the timeout: pass it on
				b.passLeadLocked()
			default:
			}
			b.mu.Unlock()
			return ctx.Err()
		}
	}
}

// leadIndexing indexes queued memories, indexBatch at a time, until own's
// is done; then it passes the lead on (or ends it when nobody waits).
func (s *Service) leadIndexing(ctx context.Context, own *indexWait) {
	b := &s.batcher
	for {
		b.mu.Lock()
		n := min(len(b.queue), indexBatch)
		batch := slices.Clone(b.queue[:n])
		b.queue = b.queue[n:]
		b.mu.Unlock()
		if n > 0 {
			ids := make([]string, n)
			for i, w := range batch {
				ids[i] = w.id
			}
			_, err := s.index(ctx, ids)
			for _, w := range batch {
				w.done <- err
			}
		}
		if n == 0 || slices.Contains(batch, own) {
			b.mu.Lock()
			b.passLeadLocked()
			b.mu.Unlock()
			return
		}
	}
}

// passLeadLocked makes the first waiting writer the leader, or ends the
// lead when nobody waits; b.mu held.
func (b *indexBatcher) passLeadLocked() {
	if len(b.queue) > 0 {
		b.queue[0].lead <- struct{}{}
	} else {
		b.running = false
	}
}
