// Package audit is the per-memory access log: who read, changed or shared
// which memory, when, through which OAuth client. The tool layer records
// entries; they are buffered in memory and written in batches by one
// background writer, so recording costs a slice append on the hot path.
// One tool call's entries about one owner (a page of get_memories, the
// hits of a search) are one row of memory_access_events listing the
// memories; the owner's list and the admins' view (memory_access_log)
// show them one entry per memory.
// Pending entries are flushed when the app terminates (graceful shutdown)
// and before an owner reads their log. Entries older than the retention
// are purged daily.
package audit

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/picard-mcp/picard/pb_migrations"
)

// Actions.
const (
	ActionRead         = "read"          // get_memories, memories://mine
	ActionSearchHit    = "search_hit"    // returned by query_memory
	ActionResourceRead = "resource_read" // memory://{id}
	ActionPersonaUse   = "persona_use"   // an answer of query_user drew on it
	ActionCreate       = "create"
	ActionUpdate       = "update"
	ActionShare        = "share" // modify_permissions
	ActionDelete       = "delete"
	ActionImport       = "import" // created or updated by POST /api/memories/import
	ActionExport       = "export" // in an owner's GET /api/memories/export
)

// Entry is one access to one memory.
type Entry struct {
	MemoryID string    `json:"memory_id"`
	OwnerID  string    `json:"owner_id"`
	ActorID  string    `json:"actor_id"`
	Actor    string    `json:"actor_username,omitempty"`
	ClientID string    `json:"client_id"`
	Action   string    `json:"action"`
	At       time.Time `json:"at"`
}

// Config configures the log.
type Config struct {
	// Retention is how long entries are kept; default 90 days.
	Retention time.Duration
	// PurgeCron is when old entries are deleted; default daily 03:47.
	PurgeCron string
	// FlushInterval is the longest an entry waits in memory; default 1s.
	FlushInterval time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// DefaultRetention is how long entries are kept without PICARD_AUDIT_RETENTION.
const DefaultRetention = 90 * 24 * time.Hour

const (
	maxBatch   = 2000    // events per transaction; more pending wakes the writer
	maxIDs     = 500     // memories per event; an export lists more in several
	maxPending = 200_000 // memories queued at most (then the oldest go)
)

// Log records and lists access entries.
type Log struct {
	app core.App
	cfg Config

	mu         sync.Mutex
	pending    []event
	pendingIDs int // memories listed in pending
	dropped    int

	db         *sql.DB   // the write pool fullInsert was prepared on (flushMu)
	fullInsert *sql.Stmt // INSERT of rowsPerInsert events

	flushMu   sync.Mutex
	wake      chan struct{}
	once      sync.Once
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// MustRegister is Register that panics on error.
func MustRegister(app core.App, cfg Config) *Log {
	l, err := Register(app, cfg)
	if err != nil {
		panic(err)
	}
	return l
}

// Register binds the final flush on terminate and the retention purge.
func Register(app core.App, cfg Config) (*Log, error) {
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Retention < 0 {
		return nil, errors.New("audit: Retention must be positive")
	}
	if cfg.PurgeCron == "" {
		cfg.PurgeCron = "47 3 * * *"
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Log{app: app, cfg: cfg, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		l.Close()
		return e.Next()
	})
	app.Cron().MustAdd("picard_purge_access_log", cfg.PurgeCron, func() {
		if n, err := l.Purge(context.Background()); err != nil {
			slog.Warn("purge of the access log failed", "error", err)
		} else if n > 0 {
			slog.Info("purged old access log entries", "count", n)
		}
	})
	return l, nil
}

// event is one row of the log as written: one tool call's entries about
// one owner's memories (same actor, client, action and time).
type event struct {
	owner, actor, client, action string
	at                           time.Time
	ids                          []string
}

// Record queues entries; it never blocks on the database. Consecutive
// entries that differ only in their memory (one call's page of results)
// become one row listing the memories.
func (l *Log) Record(entries ...Entry) {
	if len(entries) == 0 {
		return
	}
	now := l.cfg.Now().UTC()
	l.mu.Lock()
	var last *event
	for _, e := range entries {
		if e.At.IsZero() {
			e.At = now
		}
		if last == nil || last.owner != e.OwnerID || last.actor != e.ActorID || last.client != e.ClientID ||
			last.action != e.Action || !last.at.Equal(e.At) || len(last.ids) >= maxIDs {
			l.pending = append(l.pending, event{owner: e.OwnerID, actor: e.ActorID, client: e.ClientID, action: e.Action, at: e.At})
			last = &l.pending[len(l.pending)-1]
		}
		last.ids = append(last.ids, e.MemoryID)
	}
	l.pendingIDs += len(entries)
	l.trimLocked()
	n := len(l.pending)
	l.mu.Unlock()
	l.wakeAt(n)
}

// RecordCall queues one call's access to several memories of one owner:
// call's fields with each of memoryIDs (which the log keeps; do not
// modify it afterwards). It is Record without an Entry per memory.
func (l *Log) RecordCall(call Entry, memoryIDs []string) {
	if len(memoryIDs) == 0 {
		return
	}
	if call.At.IsZero() {
		call.At = l.cfg.Now().UTC()
	}
	l.mu.Lock()
	for len(memoryIDs) > 0 {
		n := min(len(memoryIDs), maxIDs)
		l.pending = append(l.pending, event{owner: call.OwnerID, actor: call.ActorID, client: call.ClientID, action: call.Action, at: call.At, ids: memoryIDs[:n:n]})
		l.pendingIDs += n
		memoryIDs = memoryIDs[n:]
	}
	l.trimLocked()
	n := len(l.pending)
	l.mu.Unlock()
	l.wakeAt(n)
}

// trimLocked drops the oldest events past maxPending memories (the
// database has been unwritable for long: keep the newest).
func (l *Log) trimLocked() {
	for l.pendingIDs > maxPending && len(l.pending) > 1 {
		l.pendingIDs -= len(l.pending[0].ids)
		l.dropped += len(l.pending[0].ids)
		l.pending[0] = event{}
		l.pending = l.pending[1:]
	}
}

// wakeAt starts the writer on first use and wakes it when n events wait.
func (l *Log) wakeAt(n int) {
	l.once.Do(func() { go l.run() })
	if n >= maxBatch {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

func (l *Log) run() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		case <-l.wake:
		}
		if err := l.Flush(); err != nil {
			slog.Warn("access log: write failed; will retry", "error", err)
		}
	}
}

// Close stops the writer and flushes what is pending. Entries recorded
// after Close stay queued until the next Flush.
func (l *Log) Close() {
	l.closeOnce.Do(func() {
		l.once.Do(func() { close(l.done) }) // never started: nothing to wait for
		close(l.stop)
		<-l.done
		if err := l.Flush(); err != nil {
			slog.Error("access log: final flush failed", "error", err)
		}
	})
}

// Flush writes every pending entry now. It takes the whole queue at once
// and leaves a fresh one for Record, so the flushed array (and the ids its
// entries hold) is freed afterwards instead of staying reachable from a
// resliced queue at its peak size.
func (l *Log) Flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	for {
		l.mu.Lock()
		queue := l.pending
		l.pending = nil
		l.pendingIDs = 0
		dropped := l.dropped
		l.dropped = 0
		l.mu.Unlock()
		if dropped > 0 {
			slog.Error("access log: dropped entries while the database was unwritable", "count", dropped)
		}
		if len(queue) == 0 {
			return nil
		}
		for len(queue) > 0 {
			n := min(len(queue), maxBatch)
			if err := l.write(queue[:n]); err != nil {
				l.mu.Lock()
				l.pending = append(queue, l.pending...) // unwritten first, in order
				for _, ev := range queue {
					l.pendingIDs += len(ev.ids)
				}
				l.mu.Unlock()
				return err
			}
			queue = queue[n:]
		}
	}
}

// rowsPerInsert is how many events one INSERT statement writes (7
// parameters each).
const rowsPerInsert = 50

// insertSQL is an INSERT of n events.
func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT OR IGNORE INTO " + pb_migrations.AccessEvents + " (id, owner, actor, client_id, action, at, memory_ids) VALUES ")
	for r := range n {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?)")
	}
	return b.String()
}

// eventIDs returns n new event ids that sort after every id issued before
// and in the order returned: the write time in microseconds, the place in
// the batch, and 4 random characters. The owner's log orders events of the
// same millisecond by id, so they list in the order they were recorded.
func eventIDs(n int) []string {
	now := strconv.FormatInt(time.Now().UnixMicro(), 36)
	out := make([]string, n)
	for i := range out {
		seq := strconv.FormatInt(int64(i), 36)
		out[i] = strings.Repeat("0", 12-len(now)) + now + strings.Repeat("0", 3-len(seq)) + seq + core.GenerateDefaultRandomId()[:4]
	}
	return out
}

// writer returns the app's write pool and the prepared INSERT of
// rowsPerInsert events on it, prepared again if the app reopened its
// database meanwhile (a restored backup).
func (l *Log) writer() (*sql.DB, *sql.Stmt, error) {
	pool, ok := l.app.NonconcurrentDB().(*dbx.DB)
	if !ok {
		return nil, nil, errors.New("access log: the app's database is not a *dbx.DB")
	}
	db := pool.DB()
	if db != l.db || l.fullInsert == nil { // flushMu held: one writer at a time
		if l.fullInsert != nil {
			_ = l.fullInsert.Close()
		}
		st, err := db.Prepare(insertSQL(rowsPerInsert))
		if err != nil {
			l.db, l.fullInsert = nil, nil
			return nil, nil, fmt.Errorf("access log: prepare: %w", err)
		}
		l.db, l.fullInsert = db, st
	}
	return l.db, l.fullInsert, nil
}

// write inserts batch in one transaction, rowsPerInsert events a
// prepared statement (plain bound values: handing SQLite one JSON array
// to take apart cost more than the rows themselves), or, when an owner
// was deleted meanwhile (foreign key), event by event, skipping those.
func (l *Log) write(batch []event) error {
	db, full, err := l.writer()
	if err != nil {
		return err
	}
	args := make([]any, 0, 7*len(batch))
	ids := eventIDs(len(batch))
	var at time.Time
	var atText string
	for i, e := range batch {
		memories, err := idsJSON(e.ids)
		if err != nil {
			return fmt.Errorf("access log: encode: %w", err)
		}
		if !e.at.Equal(at) || atText == "" { // a call's events share their time
			at, atText = e.at, dbTime(e.at)
		}
		args = append(args, ids[i], e.owner, e.actor, e.client, e.action, atText, memories)
	}
	insert := func(tx *sql.Tx, args []any) error {
		var err error
		if n := len(args) / 7; n == rowsPerInsert {
			_, err = tx.Stmt(full).Exec(args...)
		} else {
			_, err = tx.Exec(insertSQL(n), args...)
		}
		return err
	}
	inTx := func(fn func(tx *sql.Tx) error) error {
		tx, err := db.Begin()
		if err != nil {
			return fmt.Errorf("access log: begin: %w", err)
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("access log: commit: %w", err)
		}
		return nil
	}
	// OR IGNORE spares SQLite the statement journal of a multi-row insert
	// that could abort half way; the only conflict it could meet is a
	// collision of ids (foreign keys still fail).
	err = inTx(func(tx *sql.Tx) error {
		for rest := args; len(rest) > 0; {
			n := min(len(rest), 7*rowsPerInsert)
			if err := insert(tx, rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	})
	if err == nil {
		return nil
	}
	if !strings.Contains(err.Error(), "FOREIGN KEY") {
		return fmt.Errorf("access log: insert: %w", err)
	}
	return inTx(func(tx *sql.Tx) error {
		for rest := args; len(rest) > 0; rest = rest[7:] {
			if err := insert(tx, rest[:7]); err != nil {
				// the owner was deleted meanwhile: the entry has nobody to show it to
				if strings.Contains(err.Error(), "FOREIGN KEY") {
					continue
				}
				return fmt.Errorf("access log: insert: %w", err)
			}
		}
		return nil
	})
}

// Query is memory_access_log's arguments.
type Query struct {
	MemoryID string
	Limit    int
	Cursor   string
}

// Page is one page of an owner's log, newest first.
type Page struct {
	Entries    []Entry `json:"entries"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// ErrBadCursor is returned for a cursor List did not issue.
var ErrBadCursor = errors.New("cursor: is not a cursor returned by memory_access_log")

// listSQL pages an owner's log, one row per memory of each event, newest
// event first and a call's memories in the order it returned them; the
// owner index (owner, at, id) is read backwards from the cursor.
const listSQL = "SELECT e.id, j.key, CAST(j.value AS TEXT), e.actor, e.client_id, e.action, e.at" +
	" FROM " + pb_migrations.AccessEvents + " e, json_each(e.memory_ids) j WHERE e.owner = {:owner}"

// List returns the entries about ownerID's memories, newest first.
func (l *Log) List(ownerID string, q Query) (*Page, error) {
	if err := l.Flush(); err != nil {
		slog.Warn("access log: flush before listing failed", "error", err)
	}
	sql := listSQL
	params := dbx.Params{"owner": ownerID, "limit": q.Limit + 1}
	if q.MemoryID != "" {
		sql += " AND j.value = {:memory}"
		params["memory"] = q.MemoryID
	}
	if q.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		parts := strings.Split(string(b), "|")
		if err != nil || len(parts) != 3 {
			return nil, ErrBadCursor
		}
		key, err := strconv.Atoi(parts[2])
		if err != nil {
			return nil, ErrBadCursor
		}
		sql += " AND e.at <= {:at} AND (e.at < {:at} OR e.id < {:id} OR (e.id = {:id} AND j.key > {:key}))"
		params["at"], params["id"], params["key"] = parts[0], parts[1], key
	}
	sql += " ORDER BY e.at DESC, e.id DESC, j.key ASC LIMIT {:limit}"
	rows, err := l.app.DB().NewQuery(sql).Bind(params).Rows()
	if err != nil {
		return nil, fmt.Errorf("access log: list: %w", err)
	}
	defer rows.Close()
	type row struct {
		id  string
		key int
		Entry
		at string
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.key, &r.MemoryID, &r.ActorID, &r.ClientID, &r.Action, &r.at); err != nil {
			return nil, fmt.Errorf("access log: list: %w", err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("access log: list: %w", err)
	}
	page := &Page{Entries: []Entry{}}
	actors := map[string]string{}
	for i, r := range got {
		if i == q.Limit {
			last := got[i-1]
			page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(last.at + "|" + last.id + "|" + strconv.Itoa(last.key)))
			break
		}
		at, _ := types.ParseDateTime(r.at)
		e := r.Entry
		e.OwnerID, e.At = ownerID, at.Time().UTC()
		page.Entries = append(page.Entries, e)
		actors[r.ActorID] = ""
	}
	if len(actors) > 0 {
		ids := make([]any, 0, len(actors))
		for id := range actors {
			ids = append(ids, id)
		}
		var users []struct {
			ID       string `db:"id"`
			Username string `db:"username"`
		}
		if err := l.app.DB().Select("id", "username").From(pb_migrations.Users).Where(dbx.In("id", ids...)).All(&users); err == nil {
			for _, u := range users {
				actors[u.ID] = u.Username
			}
		}
		for i := range page.Entries {
			page.Entries[i].Actor = actors[page.Entries[i].ActorID]
		}
	}
	return page, nil
}

// Purge deletes entries older than the retention and returns how many
// events (calls) went.
func (l *Log) Purge(_ context.Context) (int64, error) {
	cut := dbTime(l.cfg.Now().Add(-l.cfg.Retention))
	res, err := l.app.DB().Delete(pb_migrations.AccessEvents, dbx.NewExp("at < {:cut}", dbx.Params{"cut": cut})).Execute()
	if err != nil {
		return 0, fmt.Errorf("access log: purge: %w", err)
	}
	return res.RowsAffected()
}

// idsJSON is the JSON array of ids, as json.Marshal writes it. Memory ids
// are UUIDs, which need no escaping: those are written as they are
// (json.Marshal was a fifth of the log's writing); anything else goes
// through json.Marshal.
func idsJSON(ids []string) (string, error) {
	if len(ids) == 0 {
		b, err := json.Marshal(ids)
		return string(b), err
	}
	n := 2
	for _, id := range ids {
		for i := 0; i < len(id); i++ {
			if !plainIDByte(id[i]) {
				b, err := json.Marshal(ids)
				return string(b), err
			}
		}
		n += len(id) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, '"')
	}
	b = append(b, ']')
	return string(b), nil
}

// plainIDByte says whether c stands in JSON as it is: a letter, a digit,
// '-' or '_'.
func plainIDByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_'
}

func dbTime(t time.Time) string {
	dt, _ := types.ParseDateTime(t.UTC())
	return dt.String()
}
