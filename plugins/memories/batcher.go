package memories

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/platform/policy"
)

// searchWaitMax bounds how long a search waits for the writes
// acknowledged before it to be indexed (see waitIndexed); a variable for
// tests only.
var searchWaitMax = 3 * time.Second

type indexedByCallerKey struct{}

// indexedByCaller marks a save whose memory the service queues for the
// indexer itself (indexLater), so the save does not also wake the
// reconciler to index the same memory.
func indexedByCaller(ctx context.Context) context.Context {
	return context.WithValue(ctx, indexedByCallerKey{}, true)
}

func isIndexedByCaller(ctx context.Context) bool {
	v, _ := ctx.Value(indexedByCallerKey{}).(bool)
	return v
}

const (
	// indexerBatch is the most memories one indexer pass embeds, upserts
	// and marks ready together. Under load the queue fills while a pass
	// runs, so batches grow with the write rate and the per-batch costs
	// (a keyword-index transaction, a vector-store write, a commit) are
	// shared by more writes.
	indexerBatch = 128
	// indexerBacklog bounds the queue: a writer that finds this many
	// memories waiting for the indexer waits for a pass before it is
	// acknowledged, so a sustained write rate is one the indexer keeps up
	// with (and memory use stays bounded).
	indexerBacklog = 256
	// indexerBulkBatch is the pass size while the queue is much longer
	// than the backlog (after a bulk import): larger passes share more of
	// the per-pass work.
	indexerBulkBatch = 512
	// indexLinger spaces the passes of a busy indexer: a pass that would
	// start less than this after the previous one ended waits until then
	// (or until a full batch, a flush or shutdown), so that under a
	// steady write rate a pass carries the writes of indexLinger instead
	// of the one or two that arrived while the previous pass ran. A pass
	// costs ~1 ms of CPU whatever it carries (the keyword index's pages
	// and commit), ~0.15 ms more per memory. An idle indexer starts at
	// once: a write after a quiet spell is indexed straight away. A
	// search waiting for its writes waits for the held pass (at most this
	// much longer) rather than starting it: in a busy mixed load nearly
	// every search has one of its own writes queued, and searches that
	// started passes kept them at 1-6 memories (round 6 measured that).
	// In loadbench's mixed line (5 s runs) passes carried 3.7 memories
	// without a linger, ~10.5 with 10 ms, ~15 with 20 ms and ~24 with
	// 50 ms; throughput was best at 10 ms: a longer hold saves more CPU
	// but keeps the searches waiting for it, and their connections, idle.
	indexLinger = 10 * time.Millisecond
)

// indexer is the asynchronous half of a write. The write itself is
// acknowledged once its record is committed to SQLite with index_status
// pending (the outbox), which is what makes it durable; the indexer then
// embeds, upserts and marks ready queued memories in batches in one
// background goroutine, and applies tombstones. Nothing is lost if the
// process dies with a non-empty queue: the records are still pending and
// the reconciler indexes them at the next start.
//
// Searches keep read-your-writes: a search first waits (at most
// searchWaitMax) until every write acknowledged before it started that
// its caller could see has been through an indexer pass, successful or
// not: its own writes, every write to a memory that is not private, and
// every delete. Another user's private memory is in no search of this
// caller, indexed or not, so its pass is not waited for. A failed pass
// leaves its memories pending for the reconciler and does not hold
// searches up.
type indexer struct {
	mu      sync.Mutex
	queue   []string
	tombs   uint64        // deletes whose tombstones wait to be applied
	running bool          // the drain goroutine is running
	closed  bool          // the app is terminating: no new drain goroutine
	pass    chan struct{} // closed (and replaced) after every pass
	room    chan struct{} // closed (and replaced) when a pass takes its memories off the queue
	hurry   chan struct{} // closed to end the drain goroutine's linger (full batch, flush, shutdown)
	ended   time.Time     // when the last pass ended
	linger  time.Duration // indexLinger (tests change it)
	flushes int           // FlushIndex calls waiting: no linger meanwhile
	passes  uint64        // passes run (tests)
	wg      sync.WaitGroup

	// what a search waits for: queue entries are taken in order, so the
	// entry queued k-th has been through a pass once qOut >= k (tombstones
	// likewise with tIn and tOut)
	qIn, qOut uint64
	tIn, tOut uint64
	anyAt     uint64            // qIn of the last entry any caller may see
	ownAt     map[string]uint64 // owner -> qIn of their last private entry still queued
}

// indexLater queues id for the indexer; it waits only when the backlog is
// full. private names the owner when only they can read the memory as
// written ("" otherwise): then only their searches wait for its pass.
func (s *Service) indexLater(ctx context.Context, id, private string) {
	s.enqueueIndex(ctx, id, private, false)
}

// privateOwner is what indexLater takes for rec as saved: its owner when
// its permission lets only the owner read it.
func privateOwner(rec *core.Record) string {
	if rec.GetString("permission") == (policy.Private{}).Name() {
		return rec.GetString("owner")
	}
	return ""
}

// indexAllLater queues ids for the indexer without waiting for the
// backlog: an import's memories are committed already and arrive in bulk;
// the writes after it wait for the backlog instead.
func (s *Service) indexAllLater(ids []string) {
	x := &s.idx
	x.mu.Lock()
	x.queue = append(x.queue, ids...)
	x.qIn += uint64(len(ids))
	x.anyAt = x.qIn
	s.wakeIndexerUnlock()
}

// deleteLater queues the tombstones for the indexer.
func (s *Service) deleteLater(ctx context.Context) {
	s.enqueueIndex(ctx, "", "", true)
}

func (s *Service) enqueueIndex(ctx context.Context, id, private string, tombs bool) {
	x := &s.idx
	x.mu.Lock()
	for len(x.queue) >= indexerBacklog && x.running {
		ch := x.roomChanLocked()
		x.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			// the write is committed and pending: the reconciler has it
			s.Kick()
			return
		}
		x.mu.Lock()
	}
	if tombs {
		x.tombs++
		x.tIn++
	} else {
		x.queue = append(x.queue, id)
		x.qIn++
		if private == "" {
			x.anyAt = x.qIn
		} else {
			if x.ownAt == nil {
				x.ownAt = map[string]uint64{}
			}
			x.ownAt[private] = x.qIn
		}
	}
	s.wakeIndexerUnlock()
}

// hurryLocked ends the drain goroutine's linger, if it lingers.
func (x *indexer) hurryLocked() {
	if x.hurry != nil {
		close(x.hurry)
		x.hurry = nil
	}
}

// wakeIndexerUnlock starts the indexer if it is idle (once it is closed,
// the reconciler takes what was queued) and releases x.mu, which the caller
// holds.
func (s *Service) wakeIndexerUnlock() {
	x := &s.idx
	if x.closed {
		x.mu.Unlock()
		s.Kick()
		return
	}
	if len(x.queue) >= indexerBatch {
		x.hurryLocked()
	}
	if !x.running {
		x.running = true
		x.wg.Add(1)
		go s.drainIndex()
	}
	x.mu.Unlock()
}

// roomChanLocked is what a writer waiting for the backlog waits on: the
// next pass taking its memories off the queue. (Waiting for a pass to end
// made a writer that woke before the next pass had taken its batch find
// the queue still full and wait for a second whole pass.) The queue plus
// the pass in flight stay bounded.
func (x *indexer) roomChanLocked() chan struct{} {
	if x.room == nil {
		x.room = make(chan struct{})
	}
	return x.room
}

func (x *indexer) passChanLocked() chan struct{} {
	if x.pass == nil {
		x.pass = make(chan struct{})
	}
	return x.pass
}

// drainIndex runs passes until the queue is empty.
func (s *Service) drainIndex() {
	x := &s.idx
	defer x.wg.Done()
	for {
		x.mu.Lock()
		s.lingerLocked()
		if (len(x.queue) == 0 && x.tombs == 0) || x.closed {
			x.running = false
			x.mu.Unlock()
			return
		}
		n := min(len(x.queue), indexerBatch)
		if len(x.queue) > 4*indexerBacklog {
			n = indexerBulkBatch
		}
		ids := x.queue[:n:n]
		x.queue = x.queue[n:]
		tombs := x.tombs
		x.tombs = 0
		if x.room != nil {
			close(x.room)
			x.room = nil
		}
		x.mu.Unlock()
		s.indexPass(ids, tombs > 0)
		x.mu.Lock()
		x.ended = time.Now() // the scheduler's clock, not the service's (tests move that one)
		x.passes++
		x.qOut += uint64(n)
		x.tOut += tombs
		for owner, at := range x.ownAt {
			if at <= x.qOut {
				delete(x.ownAt, owner)
			}
		}
		if x.pass != nil {
			close(x.pass)
			x.pass = nil
		}
		x.mu.Unlock()
	}
}

// lingerLocked holds a busy indexer's next pass until indexLinger after
// the last one ended (see indexLinger); a full batch, FlushIndex and
// shutdown end the wait. Searches waiting for the pass do not: they wait
// at most indexLinger longer, and that is what lets a pass carry more
// than the one write a search asked for. x.mu is held on entry and exit.
func (s *Service) lingerLocked() {
	x := &s.idx
	if x.closed || x.flushes > 0 || x.ended.IsZero() || len(x.queue) >= indexerBatch {
		return
	}
	wait := x.linger - time.Since(x.ended)
	if wait <= 0 {
		return
	}
	if x.hurry == nil {
		x.hurry = make(chan struct{})
	}
	ch := x.hurry
	x.mu.Unlock()
	t := time.NewTimer(wait)
	select {
	case <-t.C:
	case <-ch:
		t.Stop()
	}
	x.mu.Lock()
}

func (s *Service) indexPass(ids []string, tombs bool) {
	ctx, cancel := context.WithTimeout(context.Background(), indexTimeout)
	defer cancel()
	defer func() {
		// the records are committed and pending: the reconciler retries
		if p := recover(); p != nil {
			slog.Error("indexer pass panicked; the reconciler will retry", "count", len(ids), "panic", p, "stack", string(debug.Stack()))
			s.Kick()
		}
	}()
	if tombs {
		if err := s.flushTombstonesErr(ctx); err != nil {
			slog.Warn("memory deleted; its vector will be removed when the store is back", "error", err)
			s.Kick()
		}
	}
	if len(ids) == 0 {
		return
	}
	if _, err := s.index(ctx, ids); err != nil {
		slog.Warn("memories saved but not indexed yet; the reconciler will retry", "count", len(ids), "error", err)
		s.Kick()
	}
}

// indexedLocked says whether the first q queue entries and t tombstones
// have been through a pass; x.mu held.
func (x *indexer) indexedLocked(q, t uint64) bool { return x.qOut >= q && x.tOut >= t }

// waitIndexed returns once every write queued before the call that
// viewer could see has been through an indexer pass (see indexer), after
// searchWaitMax, or when ctx ends.
func (s *Service) waitIndexed(ctx context.Context, viewer string) {
	x := &s.idx
	x.mu.Lock()
	q, t := max(x.anyAt, x.ownAt[viewer]), x.tIn
	if x.indexedLocked(q, t) {
		x.mu.Unlock()
		return
	}
	timer := time.NewTimer(searchWaitMax)
	defer timer.Stop()
	for !x.indexedLocked(q, t) && !x.closed {
		ch := x.passChanLocked()
		x.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
		x.mu.Lock()
	}
	x.mu.Unlock()
}

// closeIndexer stops the indexer after its current pass and waits for it;
// what is still queued stays pending for the reconciler of the next start.
func (s *Service) closeIndexer() {
	x := &s.idx
	x.mu.Lock()
	x.closed = true
	x.hurryLocked()
	if x.pass != nil {
		close(x.pass)
		x.pass = nil
	}
	if x.room != nil {
		close(x.room)
		x.room = nil
	}
	x.mu.Unlock()
	x.wg.Wait()
}

// FlushIndex waits until every write queued so far has been through an
// indexer pass (or ctx ends). Tests and tools use it before they inspect
// the indexes directly.
func (s *Service) FlushIndex(ctx context.Context) {
	x := &s.idx
	x.mu.Lock()
	q, t := x.qIn, x.tIn // later writes do not keep it waiting
	x.flushes++          // no pass waits for the linger until this returns
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		x.flushes--
		x.mu.Unlock()
	}()
	for {
		x.mu.Lock()
		if x.indexedLocked(q, t) || x.closed {
			x.mu.Unlock()
			return
		}
		x.hurryLocked()
		ch := x.passChanLocked()
		x.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}
