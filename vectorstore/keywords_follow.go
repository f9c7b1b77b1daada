package vectorstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL replicas share the keyword tables, and an update may keep a
// memory's key, so the stats row alone cannot tell another process's cache
// what changed. Every write of this process therefore announces the ids it
// wrote on a notification channel of its schema (after its commit), and
// every cache listens on it: the ids another process announces are read
// again at the next search, like this process's own. A lost listening
// connection reloads the whole cache once it is back.

// maxAnnounced ids go in one notification (8,000 bytes is PostgreSQL's
// payload limit); a larger write announces "*", a full reload.
const maxAnnounced = 150

// pgFollower announces writes and follows other processes' ones.
type pgFollower struct {
	store    *PGStore
	channel  string
	instance string // this process's index; its own notifications are skipped
	stop     context.CancelFunc
	done     chan struct{}
}

func newPGFollower(s *PGStore) *pgFollower {
	sum := sha256.Sum256([]byte(s.schema))
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &pgFollower{store: s, channel: "picard_kw_" + hex.EncodeToString(sum[:8]), instance: hex.EncodeToString(b)}
}

// announce sends ids ("*" for everything) to the other processes.
func (f *pgFollower) announce(ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var payloads []string
	switch {
	case len(ids) == 0 || len(ids) > 20*maxAnnounced:
		payloads = []string{f.instance + " *"}
	default:
		for lo := 0; lo < len(ids); lo += maxAnnounced {
			payloads = append(payloads, f.instance+" "+strings.Join(ids[lo:min(lo+maxAnnounced, len(ids))], ","))
		}
	}
	for _, p := range payloads {
		if _, err := f.store.pool.Exec(ctx, "SELECT pg_notify($1, $2)", f.channel, p); err != nil {
			slog.Warn("keyword index: other processes not told of a write (their caches catch up at their next reload)", "error", err)
			return
		}
	}
}

// follow listens until stop is called, passing other processes' ids to
// c (nil ids: everything); listening is set up before it returns.
func (f *pgFollower) follow(c *postingsCache) {
	ctx, cancel := context.WithCancel(context.Background())
	f.stop, f.done = cancel, make(chan struct{})
	listening := make(chan struct{})
	go func() {
		defer close(f.done)
		first := true
		for ctx.Err() == nil {
			if err := f.listen(ctx, c, listening, first); err != nil && ctx.Err() == nil {
				slog.Warn("keyword index: listening for other processes' writes failed; retrying", "error", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			first = false
		}
	}()
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
	}
}

func (f *pgFollower) listen(ctx context.Context, c *postingsCache, listening chan struct{}, first bool) error {
	// a connection of its own, outside the pool (which it would shrink)
	conn, err := pgx.ConnectConfig(ctx, f.store.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{f.channel}.Sanitize()); err != nil {
		return err
	}
	if first {
		close(listening)
	} else {
		c.noteOther(nil) // notifications may have been missed meanwhile
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		inst, rest, _ := strings.Cut(n.Payload, " ")
		if inst == f.instance {
			continue
		}
		if rest == "*" {
			c.noteOther(nil)
		} else {
			c.noteOther(strings.Split(rest, ","))
		}
	}
}

// stopFollowing stops listening (for good) and waits for the connection
// to close.
func (c *postingsCache) stopFollowing() {
	f := c.follower
	if f == nil {
		return
	}
	c.followOnce.Do(func() {}) // never starts after this; orders f.stop
	if f.stop != nil {
		f.stop()
		<-f.done
	}
}

// noteOther records another process's write: ids to read again, or
// (nil) everything.
func (c *postingsCache) noteOther(ids []string) {
	if ids == nil {
		c.pendMu.Lock()
		c.pending, c.pendN, c.overflow = nil, 0, true
		c.writes.Add(1)
		c.pendMu.Unlock()
		return
	}
	c.note(pendingWrite{ids: ids})
}
