package memories

import (
	"database/sql"
	"encoding/json"
	"math/bits"
	"strings"
	"sync"

	"github.com/pocketbase/dbx"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/vectorstore"
)

// The indexer's reads and writes of the memories table: plain prepared
// statements instead of PocketBase records (field resolution, record
// hooks, a statement parsed on every pass), which were about a third of
// the CPU of an indexer pass outside the keyword index.

// indexLoadArms bounds the ids one indexLoadSQL statement reads.
const indexLoadArms = 64

// indexLoadSQL[k] reads 1<<k memories by id: that many primary-key
// lookups joined by UNION ALL. A chunk is padded with the empty id (no
// memory has it) up to the next size, so seven statement texts serve
// every batch, each prepared once per connection of the read pool.
var indexLoadSQL = func() (out []string) {
	arm := selectMemoryColumns + " FROM " + pb_migrations.Memories + " WHERE id = +?"
	for n := 1; n <= indexLoadArms; n *= 2 {
		out = append(out, arm+strings.Repeat(" UNION ALL "+arm, n-1))
	}
	return out
}()

// loadForIndex reads the memories with these ids as they are now (an id
// with no memory is absent: deleted since it was queued).
func (s *Service) loadForIndex(ids []string) ([]memoryRow, error) {
	sc := s.readStmts()
	if sc == nil {
		var out []memoryRow
		err := s.app.DB().Select(memoryColumns...).From(pb_migrations.Memories).Where(dbx.In("id", toAny(ids)...)).All(&out)
		return out, err
	}
	out := make([]memoryRow, 0, len(ids))
	args := make([]any, 0, min(len(ids), indexLoadArms))
	for lo := 0; lo < len(ids); lo += indexLoadArms {
		chunk := ids[lo:min(len(ids), lo+indexLoadArms)]
		k := bits.Len(uint(len(chunk) - 1)) // 1<<k >= len(chunk)
		st, err := sc.stmt(indexLoadSQL[k])
		if err != nil {
			return nil, err
		}
		args = args[:0]
		for _, id := range chunk {
			args = append(args, id)
		}
		for len(args) < 1<<k {
			args = append(args, "")
		}
		rows, err := st.Query(args...)
		if err != nil {
			return nil, err
		}
		if out, err = appendRows(out, rows); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// metaOfRow is the filter metadata the indexes keep for a memory.
func metaOfRow(r *memoryRow) vectorstore.Meta {
	m := vectorstore.Meta{
		OwnerID:      r.Owner,
		Permission:   r.Permission,
		SharedUsers:  jsonIDs(r.SharedUsers),
		SharedGroups: jsonIDs(r.SharedGroups),
		CreatedAt:    parseDBTime(r.Created),
	}
	if r.ExpiresAt != "" {
		m.ExpiresAt = parseDBTime(r.ExpiresAt)
	}
	return m
}

// markReadySQL marks the memories of ?1, a JSON array of [id, updated]
// pairs, ready where their updated time is still the one given: the pairs
// are walked once and each memory is found by its primary key (no
// temporary index or Bloom filter over the list). Only index_status and
// index_error change, columns no get_memories page reads, so the owners'
// change counters (pb_migrations.OwnerVersionColumns) do not move.
const markReadySQL = "UPDATE " + pb_migrations.Memories +
	" SET index_status = 'ready', index_error = ''" +
	" FROM (SELECT value ->> 0 AS id, value ->> 1 AS updated FROM json_each(?1)) AS p" +
	" WHERE " + pb_migrations.Memories + ".id = p.id AND " + pb_migrations.Memories + ".updated = p.updated"

// writeStmt is markReadySQL prepared on the write pool (database/sql
// prepares it once per connection), or nil when the app's write builder is
// not a plain dbx.DB.
type writeStmt struct {
	once sync.Once
	st   *sql.Stmt
}

func (s *Service) markReadyStmt() *sql.Stmt {
	s.readyStmt.once.Do(func() {
		if db, ok := s.app.NonconcurrentDB().(*dbx.DB); ok {
			if st, err := db.DB().Prepare(markReadySQL); err == nil {
				s.readyStmt.st = st
			}
		}
	})
	return s.readyStmt.st
}

// markReady marks rows indexed, each only if it was not written again
// since it was read (its updated time is unchanged), in one statement for
// the batch.
func (s *Service) markReady(rows []memoryRow) error {
	var b strings.Builder
	b.Grow(len(rows) * 70)
	b.WriteByte('[')
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		id, _ := json.Marshal(rows[i].ID)
		up, _ := json.Marshal(rows[i].Updated)
		b.WriteByte('[')
		b.Write(id)
		b.WriteByte(',')
		b.Write(up)
		b.WriteByte(']')
	}
	b.WriteByte(']')
	if st := s.markReadyStmt(); st != nil {
		_, err := st.Exec(b.String())
		return err
	}
	_, err := s.app.NonconcurrentDB().NewQuery(strings.ReplaceAll(markReadySQL, "?1", "{:p}")).Bind(dbx.Params{"p": b.String()}).Execute()
	return err
}
