package memories

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/platform/policy"
)

// memoryColumns are the columns memoryRow reads.
var memoryColumns = []string{"id", "owner", "text", "permission", "shared_users", "shared_groups", "expires_at", "created", "updated"}

// selectMemoryColumns selects memoryColumns, in order, each as +column:
// the same value, but an expression, so it has no declared type, which
// the SQLite driver otherwise looks up (a locked call and an allocation)
// for every text column of every row to decide whether it is a date.
var selectMemoryColumns = "SELECT +" + strings.Join(memoryColumns, ", +")

// memoryRow is a memory read straight into a struct: listing skips
// building a PocketBase Record per row (field resolution and interceptors),
// which dominated get_memories' CPU profile.
type memoryRow struct {
	ID           string `db:"id"`
	Owner        string `db:"owner"`
	Text         string `db:"text"`
	Permission   string `db:"permission"`
	SharedUsers  string `db:"shared_users"`
	SharedGroups string `db:"shared_groups"`
	ExpiresAt    string `db:"expires_at"`
	Created      string `db:"created"`
	Updated      string `db:"updated"`
}

func (s *Service) rowToMemory(r *memoryRow) (*Memory, error) {
	text, err := s.decrypt(r.ID, r.Text)
	if err != nil {
		return nil, err
	}
	created := parseDBTime(r.Created)
	updated := parseDBTime(r.Updated)
	m := &Memory{
		ID:               r.ID,
		Text:             text,
		Permission:       r.Permission,
		SharedWith:       jsonIDs(r.SharedUsers),
		SharedWithGroups: jsonIDs(r.SharedGroups),
		OwnerID:          r.Owner,
		Created:          created,
		Updated:          updated,
	}
	if r.ExpiresAt != "" {
		if t := parseDBTime(r.ExpiresAt); !t.IsZero() {
			m.ExpirationDate = &t
		}
	}
	return m, nil
}

// dbTimeLayout is how PocketBase stores dates (types.DefaultDateLayout).
const dbTimeLayout = types.DefaultDateLayout

// parseDBTime reads a stored date: the stored layout directly, anything
// else through PocketBase's lenient parser. Zero when empty or invalid.
func parseDBTime(v string) time.Time {
	if t, err := time.Parse(dbTimeLayout, v); err == nil {
		return t.UTC()
	}
	dt, _ := types.ParseDateTime(v)
	return dt.Time().UTC()
}

// stmtCache keeps one prepared statement per SQL text on the read pool
// (database/sql prepares it once per connection and reuses it), so a
// listing does not parse and plan its query on every call: SQLite's
// prepare was ~11% of get_memories.
type stmtCache struct {
	db *sql.DB
	m  sync.Map // SQL -> *sql.Stmt
}

func (c *stmtCache) stmt(query string) (*sql.Stmt, error) {
	if st, ok := c.m.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.db.Prepare(query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.m.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// readStmts returns the statement cache of the app's read pool, or nil
// when the app's read builder is not a plain dbx.DB.
func (s *Service) readStmts() *stmtCache {
	s.stmtsOnce.Do(func() {
		if db, ok := s.app.ConcurrentDB().(*dbx.DB); ok {
			s.stmts = &stmtCache{db: db.DB()}
		}
	})
	return s.stmts
}

// listQuery is one get_memories page as a fixed-shape SQL text (so it is
// prepared once) and its arguments.
type listQuery struct {
	ownerID, permission string
	now                 string // "" includes expired memories
	cursorCreated       string // "" for the first page
	cursorID            string
	desc                bool
	limit               int
	// refreshPage's read: only memories before (boundCreated, boundID)
	// in the page's order ("": no bound)
	boundCreated, boundID string
}

// sql renders q. Parameters are written +? (the value, without affinity):
// SQLite otherwise looks at a bound value while planning (the sqlite_stat4
// samples for a column compared with it, the LIMIT's value) and then
// re-prepares the statement whenever that parameter is bound again, which
// undid the prepared statement. The page is a range of the owner's
// (created, id) index (pb_migrations.MemoriesPageIndex), read in order.
func (q listQuery) sql() (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 6)
	b.WriteString(selectMemoryColumns + " FROM " + pb_migrations.Memories + " WHERE owner = +?")
	args = append(args, q.ownerID)
	if q.permission != "" {
		b.WriteString(" AND permission = +?")
		args = append(args, q.permission)
	}
	if q.now != "" {
		b.WriteString(" AND (expires_at = '' OR expires_at > +?)")
		args = append(args, q.now)
	}
	op, back, order := ">", "<", "ASC" // back: the other way (refreshPage's bound)
	if q.desc {
		op, back, order = "<", ">", "DESC"
	}
	if q.cursorCreated != "" {
		b.WriteString(" AND (created, id) " + op + " (+?, +?)")
		args = append(args, q.cursorCreated, q.cursorID)
	}
	if q.boundCreated != "" {
		b.WriteString(" AND (created, id) " + back + " (+?, +?)")
		args = append(args, q.boundCreated, q.boundID)
	}
	b.WriteString(" ORDER BY created " + order + ", id " + order + " LIMIT +?")
	args = append(args, q.limit)
	return b.String(), args
}

// queryRows runs q on a prepared statement and scans the rows.
func (s *Service) queryRows(q listQuery) ([]memoryRow, error) {
	sc := s.readStmts()
	if sc == nil {
		return s.queryRowsDBX(q)
	}
	text, args := q.sql()
	st, err := sc.stmt(text)
	if err != nil {
		return nil, err
	}
	rows, err := st.Query(args...)
	if err != nil {
		return nil, err
	}
	return scanRows(rows, q.limit)
}

// scanRows reads memoryColumns rows and closes rows.
func scanRows(rows *sql.Rows, hint int) ([]memoryRow, error) {
	return appendRows(make([]memoryRow, 0, hint), rows)
}

// appendRows appends the memoryColumns rows of rows to out and closes rows.
func appendRows(out []memoryRow, rows *sql.Rows) ([]memoryRow, error) {
	defer rows.Close()
	for rows.Next() {
		var r memoryRow
		if err := rows.Scan(&r.ID, &r.Owner, &r.Text, &r.Permission, &r.SharedUsers, &r.SharedGroups, &r.ExpiresAt, &r.Created, &r.Updated); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// queryRowsDBX is queryRows through the query builder, for an app whose
// read pool is not a plain dbx.DB.
func (s *Service) queryRowsDBX(q listQuery) ([]memoryRow, error) {
	sel := s.app.DB().Select(memoryColumns...).From(pb_migrations.Memories).
		AndWhere(dbx.HashExp{"owner": q.ownerID})
	if q.permission != "" {
		sel = sel.AndWhere(dbx.HashExp{"permission": q.permission})
	}
	if q.now != "" {
		sel = sel.AndWhere(dbx.NewExp("(expires_at = '' OR expires_at > {:now})", dbx.Params{"now": q.now}))
	}
	op, back, order := ">", "<", "ASC" // back: the other way (refreshPage's bound)
	if q.desc {
		op, back, order = "<", ">", "DESC"
	}
	if q.cursorCreated != "" {
		sel = sel.AndWhere(dbx.NewExp(fmt.Sprintf("(created %[1]s {:c} OR (created = {:c} AND id %[1]s {:id}))", op), dbx.Params{"c": q.cursorCreated, "id": q.cursorID}))
	}
	if q.boundCreated != "" {
		sel = sel.AndWhere(dbx.NewExp(fmt.Sprintf("(created %[1]s {:bc} OR (created = {:bc} AND id %[1]s {:bid}))", back), dbx.Params{"bc": q.boundCreated, "bid": q.boundID}))
	}
	var out []memoryRow
	err := sel.OrderBy("created "+order, "id "+order).Limit(int64(q.limit)).All(&out)
	return out, err
}

// rowVisible re-checks a memory read as a row against the policy and its
// expiry, as the record paths do.
func (s *Service) rowVisible(v policy.Viewer, r *memoryRow) bool {
	if r.ExpiresAt != "" {
		if exp := parseDBTime(r.ExpiresAt); !exp.IsZero() && !exp.After(s.timeNow()) {
			return false
		}
	}
	return s.policies.CanRead(v, policy.Memory{
		OwnerID:      r.Owner,
		Permission:   r.Permission,
		SharedUsers:  jsonIDs(r.SharedUsers),
		SharedGroups: jsonIDs(r.SharedGroups),
	})
}

// byIDArms bounds the ids one statement of the search-hit cache looks up
// (byIDVersionSQL, ownerCountersSQL); more are read in several statements.
const byIDArms = 32

// rowsByID reads the memories with these ids, in no particular order;
// ids with no memory are absent (an id given twice is read twice). It is
// the indexer's loader (loadForIndex: compounds of primary-key lookups,
// WHERE id = +? joined by UNION ALL, in seven padded sizes prepared once
// per connection). Those compounds replaced "id IN (SELECT value FROM
// json_each(?))", which built an ephemeral index and a 10,000-byte Bloom
// filter on every run (a malloc and memset of 10 KB, which modernc's
// allocator serves by mmap and frees by munmap): ~380 µs of CPU per
// query_memory, a third of it.
func (s *Service) rowsByID(ids []string) ([]memoryRow, error) {
	return s.loadForIndex(ids)
}

// jsonIDs reads a multi-relation column (a JSON array of ids, or empty).
func jsonIDs(v string) []string {
	ids := []string{}
	if v == "" || v == "[]" {
		return ids
	}
	if err := json.Unmarshal([]byte(v), &ids); err != nil || ids == nil {
		return []string{}
	}
	return ids
}
