package memories

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/vectorstore"
)

// The outbox: every write of a memory record marks it index_status=pending
// (hooks in memories.go, inside the write's transaction); deleting one
// leaves a tombstone in the same transaction. The reconciler embeds and
// upserts what is pending and deletes what is tombstoned, at start, when
// kicked after a write, and periodically, so a vector-store outage delays
// search but never loses a write.

const (
	indexBatch    = 64
	indexTimeout  = 10 * time.Second
	reconcileTick = 15 * time.Second
)

// Kick asks the reconciler to run soon; it never blocks.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// RunReconciler processes the outbox until ctx ends.
func (s *Service) RunReconciler(ctx context.Context) {
	t := time.NewTicker(reconcileTick)
	defer t.Stop()
	for {
		if _, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("reconcile: vector store not up to date yet; will retry", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

// Reconcile indexes every pending memory and applies every tombstone. It
// returns how many memories it indexed.
//
// It indexes the memories written before it started: those the service
// writes from then on are the indexer's (a failed pass kicks the
// reconciler again), and a write through the dashboard or the records API
// kicks it. Under a steady write rate, a pass that also took every newer
// pending memory chased the writes and indexed each one a second time
// next to the indexer.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	// PocketBase stamps updated with the wall clock, not the service's
	// test clock, so the pass compares against the wall clock too
	started := time.Now()
	s.FlushIndex(ctx) // what the indexer has queued is not indexed twice
	if err := s.flushTombstonesErr(ctx); err != nil {
		return 0, err
	}
	return s.indexAllPending(ctx, started, nil)
}

// reconcileFuture is how far past a pass's start a pending memory's
// updated time may be and still be left to the indexer: a memory stamped
// later than that (the clock went back, or another writer set it) is
// indexed anyway, so it is never stranded for longer.
const reconcileFuture = time.Minute

// index embeds and upserts the given memories, then marks each ready if
// it was not written again meanwhile.
func (s *Service) index(ctx context.Context, ids []string) (int, error) {
	rows, err := s.loadForIndex(ids)
	if err != nil {
		return 0, fmt.Errorf("index: load: %w", err)
	}
	// A memory that cannot be read (a token under a key no longer
	// configured) stays pending with its error noted; it must not keep the
	// rest of its batch out of the index.
	var bad []memoryRow
	var badErr []string
	texts := make([]string, 0, len(rows))
	good := rows[:0]
	for _, r := range rows {
		text, err := s.decrypt(r.ID, r.Text)
		if err != nil {
			slog.Warn("memory cannot be indexed: its text does not decrypt; it stays pending", "memory", r.ID, "error", err)
			bad, badErr = append(bad, r), append(badErr, err.Error())
			continue
		}
		good = append(good, r)
		texts = append(texts, text)
	}
	rows = good
	if len(bad) > 0 {
		if err := s.app.RunInTransaction(func(tx core.App) error {
			for i, r := range bad {
				if _, err := tx.DB().Update(pb_migrations.Memories,
					dbx.Params{"index_error": truncate(badErr[i], 2000)},
					dbx.HashExp{"id": r.ID, "updated": r.Updated},
				).Execute(); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return 0, fmt.Errorf("index: note errors: %w", err)
		}
	}
	if len(rows) == 0 {
		return 0, nil
	}
	if s.Vectors() {
		vecs, err := s.embedder.Embed(ctx, texts)
		if err != nil {
			return 0, fmt.Errorf("index: embed: %w", err)
		}
		items := make([]vectorstore.Item, len(rows))
		for i := range rows {
			items[i] = vectorstore.Item{ID: rows[i].ID, Meta: metaOfRow(&rows[i]), Vector: vecs[i]}
		}
		if err := s.store.Upsert(ctx, s.embedder.Space(), items...); err != nil {
			return 0, fmt.Errorf("index: upsert: %w", err)
		}
	} else if err := s.markVectorsIncomplete(); err != nil {
		return 0, err
	}
	if s.keywords != nil {
		if err := s.keywords.IndexDocs(ctx, s.keywordDocs(rows, texts)...); err != nil {
			return 0, fmt.Errorf("index: keywords: %w", err)
		}
	}
	if err := s.markReady(rows); err != nil {
		return 0, fmt.Errorf("index: mark ready: %w", err)
	}
	return len(rows), nil
}

func (s *Service) flushTombstones(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), indexTimeout)
	defer cancel()
	if err := s.flushTombstonesErr(ctx); err != nil {
		slog.Warn("memory deleted; its vector will be removed when the store is back", "error", err)
		s.Kick()
	}
}

func (s *Service) flushTombstonesErr(ctx context.Context) error {
	for {
		var ids []string
		err := s.app.DB().Select("memory_id").From(pb_migrations.Tombstones).Limit(500).Column(&ids)
		if err != nil {
			return fmt.Errorf("tombstones: list: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		if err := s.store.Delete(ctx, ids...); err != nil {
			return fmt.Errorf("tombstones: delete vectors: %w", err)
		}
		if s.keywords != nil {
			if err := s.keywords.DeleteDocs(ctx, ids...); err != nil {
				return fmt.Errorf("tombstones: delete keywords: %w", err)
			}
		}
		if _, err := s.app.DB().Delete(pb_migrations.Tombstones, dbx.In("memory_id", toAny(ids)...)).Execute(); err != nil {
			return fmt.Errorf("tombstones: clear: %w", err)
		}
	}
}

// PurgeExpired deletes every expired memory (its vector follows through
// the tombstones). Expired memories are already invisible on every path;
// this reclaims the space.
func (s *Service) PurgeExpired(ctx context.Context) (int, error) {
	now := dbTime(s.timeNow())
	n := 0
	for {
		var recs []*core.Record
		err := s.app.RecordQuery(pb_migrations.Memories).
			AndWhere(dbx.NewExp("expires_at != '' AND expires_at <= {:now}", dbx.Params{"now": now})).
			Limit(200).All(&recs)
		if err != nil {
			return n, fmt.Errorf("purge: list: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if err := s.app.Delete(r); err != nil {
				return n, fmt.Errorf("purge: delete %s: %w", r.Id, err)
			}
			n++
		}
	}
	if n > 0 {
		s.flushTombstones(ctx)
	}
	return n, nil
}

// Reindex empties the vector store and the keyword index, marks every
// memory pending, then indexes them all, reporting progress. Use it after
// changing embedder or keyword key. It is resumable: a marker file in the
// data dir records that a reindex started, and a second run after an
// interruption only indexes what is still pending.
func (s *Service) Reindex(ctx context.Context, progress func(done, total int)) (int, error) {
	marker := filepath.Join(s.app.DataDir(), "reindex.pending")
	if _, err := os.Stat(marker); err != nil {
		if err := os.WriteFile(marker, []byte("a reindex started; run `picard reindex` again to finish it\n"), 0o600); err != nil {
			return 0, fmt.Errorf("reindex: write marker: %w", err)
		}
		if err := s.store.Reset(ctx); err != nil {
			return 0, fmt.Errorf("reindex: reset store: %w", err)
		}
		if s.keywords != nil {
			if err := s.keywords.ResetKeywords(ctx); err != nil {
				return 0, fmt.Errorf("reindex: reset keyword index: %w", err)
			}
		}
		if _, err := s.app.DB().NewQuery("UPDATE " + pb_migrations.Memories + " SET index_status = 'pending'").Execute(); err != nil {
			return 0, fmt.Errorf("reindex: mark pending: %w", err)
		}
		if _, err := s.app.DB().Delete(pb_migrations.Tombstones, nil).Execute(); err != nil {
			return 0, fmt.Errorf("reindex: clear tombstones: %w", err)
		}
	} else {
		slog.Info("resuming an interrupted reindex", "marker", marker)
	}
	if s.Vectors() {
		s.clearVectorsIncomplete() // every memory is pending: each gets its vector
	}
	n, err := s.indexAllPending(ctx, time.Time{}, progress)
	if err != nil {
		return n, err
	}
	if err := os.Remove(marker); err != nil && !os.IsNotExist(err) {
		return n, fmt.Errorf("reindex: remove marker: %w", err)
	}
	return n, nil
}

// indexAllPending indexes the pending memories; with a non-zero before,
// only those updated before it (or implausibly far after it, see
// reconcileFuture).
func (s *Service) indexAllPending(ctx context.Context, before time.Time, progress func(done, total int)) (int, error) {
	var total int
	if progress != nil {
		if err := s.app.DB().Select("count(*)").From(pb_migrations.Memories).Where(dbx.HashExp{"index_status": "pending"}).Row(&total); err != nil {
			return 0, fmt.Errorf("count pending: %w", err)
		}
	}
	written := dbx.NewExp("1")
	if !before.IsZero() {
		written = dbx.NewExp("(updated <= {:before} OR updated > {:future})", dbx.Params{
			"before": dbTime(before), "future": dbTime(before.Add(reconcileFuture)),
		})
	}
	done := 0
	lastID := ""
	for {
		var ids []string
		err := s.app.DB().Select("id").From(pb_migrations.Memories).
			Where(dbx.HashExp{"index_status": "pending"}).
			AndWhere(dbx.NewExp("id > {:last}", dbx.Params{"last": lastID})).
			AndWhere(written).
			OrderBy("id").Limit(indexBatch).Column(&ids)
		if err != nil {
			return done, fmt.Errorf("list pending: %w", err)
		}
		if len(ids) == 0 {
			return done, nil
		}
		n, err := s.index(ctx, ids)
		done += n
		if progress != nil {
			progress(done, total)
		}
		if err != nil {
			return done, err
		}
		lastID = ids[len(ids)-1]
	}
}

// checkSpace marks every memory pending when the store holds fewer vectors
// of the current embedding space than there are indexed memories: the
// embedder or model changed, or the store was emptied.
func (s *Service) checkSpace(ctx context.Context) {
	if s.Vectors() && s.vectorsIncomplete() {
		// dense search was off when some memories were indexed: they have
		// no vector. Everything goes back to the outbox; the marker can go
		// now, the pending marks carry the work.
		slog.Warn("dense search is on and memories were indexed while it was off; building their vectors", "space", s.embedder.Space().String())
		if _, err := s.app.DB().NewQuery("UPDATE " + pb_migrations.Memories + " SET index_status = 'pending' WHERE index_status = 'ready'").Execute(); err != nil {
			slog.Warn("could not mark memories for their vectors; will retry at the next start", "error", err)
			return
		}
		s.clearVectorsIncomplete()
		return
	}
	var ready int
	if err := s.app.DB().Select("count(*)").From(pb_migrations.Memories).Where(dbx.HashExp{"index_status": "ready"}).Row(&ready); err != nil {
		return
	}
	have := ready
	if s.Vectors() {
		n, err := s.store.Count(ctx, s.embedder.Space())
		if err != nil {
			return
		}
		have = n
	}
	if s.keywords != nil {
		if n, err := s.keywords.KeywordCount(ctx); err == nil && n < have {
			have = n
		}
	}
	if have < ready {
		slog.Warn("vector store or keyword index is missing memories; reindexing", "space", s.embedder.Space().String(), "have", have, "memories", ready)
		_, _ = s.app.DB().NewQuery("UPDATE " + pb_migrations.Memories + " SET index_status = 'pending' WHERE index_status = 'ready'").Execute()
	}
}

// Vectors reports whether indexing embeds memories and keeps their vectors:
// only when queries run the dense search (PICARD_SEARCH_DENSE, by default
// only with a semantic embedder). Keyword search needs no vector, so with
// the default local embedder a write costs no embedding and no vector-store
// write. Memories indexed without a vector are remembered by a marker file
// in the data dir; when dense search is switched on, the next start sends
// every memory back through the outbox to get its vector (checkSpace).
func (s *Service) Vectors() bool { return s.dense }

const vectorsIncompleteFile = "vectors.incomplete"

func (s *Service) vectorsIncompletePath() string {
	return filepath.Join(s.app.DataDir(), vectorsIncompleteFile)
}

func (s *Service) vectorsIncomplete() bool {
	_, err := os.Stat(s.vectorsIncompletePath())
	return err == nil
}

// markVectorsIncomplete records, once, that memories were indexed without
// vectors.
func (s *Service) markVectorsIncomplete() error {
	if s.noVectorsMarked.Load() {
		return nil
	}
	p := s.vectorsIncompletePath()
	if _, err := os.Stat(p); err != nil {
		msg := "memories were indexed without vectors (dense search off); when dense search is switched on they are reindexed at start\n"
		if err := os.WriteFile(p, []byte(msg), 0o600); err != nil {
			return fmt.Errorf("index: write %s: %w", vectorsIncompleteFile, err)
		}
	}
	s.noVectorsMarked.Store(true)
	return nil
}

func (s *Service) clearVectorsIncomplete() {
	if err := os.Remove(s.vectorsIncompletePath()); err != nil && !os.IsNotExist(err) {
		slog.Warn("could not remove the vectors marker", "file", vectorsIncompleteFile, "error", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
