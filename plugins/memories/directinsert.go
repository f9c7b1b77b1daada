package memories

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"
)

// insertStmts holds the group commit's INSERT statements, prepared once on
// the write pool (database/sql keeps one per connection; the pool has
// one), by column list: a field an admin adds to the collection gets a
// statement of its own.
type insertStmts struct {
	mu    sync.Mutex
	db    *sql.DB
	stmts map[string]*sql.Stmt // INSERTs, and readSeeds' two reads
}

// directInsertable says whether directInsert may write rec: a new record
// with its id set whose fields need none of PocketBase's create
// interceptors but the autodates, which directInsert sets itself (no file
// to upload, no password to hash, no text to generate).
func directInsertable(rec *core.Record) bool {
	if rec == nil || !rec.IsNew() || rec.Id == "" {
		return false
	}
	col := rec.Collection()
	if col == nil || col.IsAuth() {
		return false
	}
	for _, field := range col.Fields {
		switch f := field.(type) {
		case *core.AutodateField:
		case *core.TextField:
			if f.AutogeneratePattern != "" && rec.GetString(f.Name) == "" {
				return false
			}
		default:
			if _, ok := field.(core.RecordInterceptor); ok {
				return false
			}
		}
	}
	return true
}

// directInsert commits new memories with a prepared INSERT in one
// transaction of the write pool, instead of PocketBase's save: that save
// runs the record's field interceptors and the create hooks around every
// write and prepares its INSERT again each time (about two thirds of a
// write's CPU in the group commit, ~200 µs). What those hooks do to a new
// memory is done here: the text is encrypted (the fernet plugin's
// encryptOnWrite), index_status is pending (the outbox mark), created and
// updated are set when unset (the autodate fields). After the commit the
// after-create hooks run as after PocketBase's save (saved: OnModelAfterCreateSuccess,
// and through it OnRecordAfterCreateSuccess and realtime events). Hooks
// bound to the memories' create or create-execute events by other code are
// not run for these writes; the dashboard's and the records API's writes
// keep them all.
//
// As in saveHooked, a record whose INSERT fails gets its own error and
// the others commit; a failed BEGIN or COMMIT refuses them all. It returns
// false, having done nothing, when the app's write builder is not a plain
// dbx.DB.
func (s *Service) directInsert(batch []*saveWait) bool {
	pool, ok := s.app.NonconcurrentDB().(*dbx.DB)
	if !ok {
		return false
	}
	db := pool.DB()
	errs := make([]error, len(batch))
	for i, w := range batch {
		errs[i] = w.row.err
	}
	txErr := func() error {
		// prepared before BEGIN: the transaction holds the pool's one
		// connection, which Prepare would wait for
		shared := map[string]*sql.Stmt{}
		counter, cerr := s.inserts.prepared(db, seedCounterSQL)
		schema, serr := s.inserts.prepared(db, seedSchemaSQL)
		for i := range batch {
			if errs[i] != nil {
				continue
			}
			r := batch[i].row
			if _, ok := shared[r.cols]; !ok {
				st, err := s.inserts.stmt(db, batch[i].rec.Collection().Name, r.cols)
				if err != nil {
					return err
				}
				shared[r.cols] = st
			}
		}
		tx, err := db.BeginTx(context.Background(), nil)
		if err != nil {
			return err
		}
		inTx := map[string]*sql.Stmt{}
		for i := range batch {
			if errs[i] != nil {
				continue
			}
			r := batch[i].row
			st, ok := inTx[r.cols]
			if !ok {
				st = tx.Stmt(shared[r.cols])
				inTx[r.cols] = st
			}
			if _, err := st.Exec(r.args...); err != nil {
				errs[i] = err // SQLite undid this statement only
			}
		}
		if cerr == nil && serr == nil {
			s.readSeeds(tx, counter, schema, batch, errs)
		}
		return tx.Commit()
	}()
	for i, w := range batch {
		if txErr != nil {
			w.done <- fmt.Errorf("save memory: %w", txErr) // nothing was written
			continue
		}
		w.done <- errs[i]
	}
	return true
}

// saved finishes a write directInsert took (w.row set), in its writer's
// goroutine once the batch is answered: a written record is no longer
// new, its text goes to the text cache and the after-create hooks run; a
// refused one gets its plain text back. A write through PocketBase's save
// needs nothing more.
func (s *Service) saved(w *saveWait, err error) {
	if w.row == nil {
		return
	}
	if err != nil {
		w.rec.Set("text", w.row.plain)
		return
	}
	w.rec.MarkAsNotNew()
	if w.row.token != "" && s.texts != nil {
		s.texts.put(w.rec.Id, w.row.token, w.row.plain)
	}
	s.seedHit(w)
	s.afterCreate(w)
}

// insertRow is a new memory's INSERT as directInsert runs it, prepared by
// prepareInsert.
type insertRow struct {
	cols  string // column names, sorted, comma-separated
	args  []any  // their values
	token string // the text encrypted
	plain string // the text
	err   error  // the record cannot be written
	seed  hitSeed
}

// prepareInsert does to rec what PocketBase's create hooks would (see
// directInsert) and exports its columns. The writer runs it before it
// queues, so the group commit's leader only runs the statements.
func (s *Service) prepareInsert(rec *core.Record) *insertRow {
	r := &insertRow{plain: rec.GetString("text")}
	if r.plain != "" {
		tok, err := s.cipher.Encrypt(r.plain)
		if err != nil {
			r.err = fmt.Errorf("encrypt: %w", err)
			return r
		}
		r.token = tok
		rec.Set("text", tok)
	}
	rec.Set("index_status", "pending")
	now := types.NowDateTime()
	for _, field := range rec.Collection().Fields {
		if f, ok := field.(*core.AutodateField); ok && f.OnCreate && rec.GetDateTime(f.Name).IsZero() {
			rec.SetRaw(f.Name, now)
		}
	}
	data, err := rec.DBExport(s.app)
	if err != nil {
		r.err = err
		return r
	}
	if _, ok := data["id"]; !ok {
		data["id"] = rec.Id
	}
	names := make([]string, 0, len(data))
	for name := range data {
		names = append(names, name)
	}
	slices.Sort(names)
	r.args = make([]any, len(names))
	for j, name := range names {
		r.args[j] = data[name]
	}
	r.cols = strings.Join(names, ",")
	return r
}

// afterCreate runs the hooks PocketBase runs after a committed create.
// The write is committed either way: a hook's error or panic is logged.
func (s *Service) afterCreate(w *saveWait) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("memories: after-create hook panicked", "id", w.rec.Id, "panic", p)
		}
	}()
	ev := &core.ModelEvent{App: s.app, Context: w.ctx, Type: core.ModelEventTypeCreate}
	ev.Model = w.rec
	if err := s.app.OnModelAfterCreateSuccess().Trigger(ev); err != nil {
		slog.Warn("memories: after-create hook", "id", w.rec.Id, "error", err)
	}
}

// stmt returns the INSERT of cols (comma-separated, sorted) into table,
// prepared on db.
func (x *insertStmts) stmt(db *sql.DB, table, cols string) (*sql.Stmt, error) {
	names := strings.Split(cols, ",")
	// table and column names are the collection's, which PocketBase
	// limits to letters, digits and underscores; the values are bound
	return x.prepared(db, "INSERT INTO `"+table+"` (`"+strings.Join(names, "`,`")+"`) VALUES (?"+strings.Repeat(",?", len(names)-1)+")") //nolint:gosec // see above
}

// prepared returns q prepared on db, once.
func (x *insertStmts) prepared(db *sql.DB, q string) (*sql.Stmt, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.db != db {
		for _, st := range x.stmts {
			_ = st.Close()
		}
		x.db, x.stmts = db, map[string]*sql.Stmt{}
	}
	key := q
	if st, ok := x.stmts[key]; ok {
		return st, nil
	}
	st, err := db.Prepare(q)
	if err != nil {
		return nil, err
	}
	x.stmts[key] = st
	return st, nil
}
