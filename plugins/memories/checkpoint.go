package memories

import (
	"context"
	"log/slog"
	"time"
)

// checkpointEvery is how often the background checkpointer copies data.db's
// write-ahead log into the database.
const checkpointEvery = 250 * time.Millisecond

// runCheckpointer moves data.db's WAL checkpoints off the write path.
//
// SQLite checkpoints (copies the WAL into the database file and fsyncs it)
// inside the commit that takes the WAL past 1,000 pages, so one write in a
// few hundred waited for a checkpoint, and with group commit so did every
// writer queued behind it: on a busy disk that fsync took hundreds of
// milliseconds, the whole of submit_memory's p99. Here the single write
// connection does not checkpoint (wal_autocheckpoint=0, set again every
// round because PocketBase reopens idle connections) and a read connection
// runs a PASSIVE checkpoint every checkpointEvery, concurrently with the
// writer, which SQLite allows in WAL mode.
//
// Durability does not change: a commit is in the WAL when it returns
// (synchronous=NORMAL), which is what survives a process kill; where the
// checkpoint runs decides only who waits for it. If this goroutine stops,
// the next start's connections checkpoint as SQLite does by default.
func (s *Service) runCheckpointer(ctx context.Context) {
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	warned := false
	for {
		if err := s.checkpoint(); err != nil && !warned && ctx.Err() == nil {
			slog.Warn("background WAL checkpoint failed; will retry", "error", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			// let the write connection checkpoint again on its own
			_, _ = s.app.NonconcurrentDB().NewQuery("PRAGMA wal_autocheckpoint=1000").Execute()
			return
		case <-t.C:
		}
	}
}

// checkpoint turns the write connection's automatic checkpoints off and
// runs one PASSIVE checkpoint from a read connection.
func (s *Service) checkpoint() error {
	if _, err := s.app.NonconcurrentDB().NewQuery("PRAGMA wal_autocheckpoint=0").Execute(); err != nil {
		return err
	}
	var busy, log, done int
	return s.app.ConcurrentDB().NewQuery("PRAGMA wal_checkpoint(PASSIVE)").Row(&busy, &log, &done)
}
