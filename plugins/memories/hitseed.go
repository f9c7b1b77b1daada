package memories

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"

	"github.com/picard-mcp/picard/pb_migrations"
)

// A new memory written by directInsert goes into the search-hit cache as
// written, so the first search that finds it does not read its row back.
// Under a mix of writes and searches, reading hits' rows was 8-16 µs of a
// mixed call, new memories among them (docs/performance.md, "Hot path,
// round 10"); seeding costs ~4 µs a write.
//
// A cached hit is current while its owner's changed counter is the one it
// was read with, at the schema version it was read at (see hitCache).
// directInsert reads both inside the transaction that inserts the memory,
// after the insert: the counter and the row are from one snapshot, as
// when a search reads them with one statement. The entry's data version
// is unknown (0), so its first use checks the counter.

// hitSeed is what directInsert read for a new memory's cache entry.
type hitSeed struct {
	changed, schema int64
	ok              bool
}

// Statements of readSeeds, prepared on the write pool with the INSERTs.
const (
	seedCounterSQL = "SELECT " + pb_migrations.OwnerChangedColumn + " FROM " + pb_migrations.OwnerVersions + " WHERE owner = ?"
	seedSchemaSQL  = "SELECT schema_version FROM pragma_schema_version"
)

// readSeeds reads, in the inserting transaction tx, the schema version
// and the changed counters of the owners of the batch's inserted memories
// (errs[i] == nil) into their rows. A failed read only leaves the memory
// out of the cache.
func (s *Service) readSeeds(tx *sql.Tx, counter, schema *sql.Stmt, batch []*saveWait, errs []error) {
	if pc := s.pageCacheFor(); pc == nil || pc.hitc == nil {
		return
	}
	var sv int64
	if err := tx.Stmt(schema).QueryRow().Scan(&sv); err != nil {
		return
	}
	st := tx.Stmt(counter)
	seen := map[string]hitSeed{}
	for i, w := range batch {
		if errs[i] != nil {
			continue
		}
		owner := w.rec.GetString("owner")
		seed, ok := seen[owner]
		if !ok {
			var c int64
			err := st.QueryRow(owner).Scan(&c)
			seed = hitSeed{changed: c, schema: sv, ok: err == nil}
			seen[owner] = seed
		}
		w.row.seed = seed
	}
}

// seedHit puts a memory directInsert committed into the hit cache.
func (s *Service) seedHit(w *saveWait) {
	seed := w.row.seed
	pc := s.pageCacheFor()
	if !seed.ok || pc == nil || pc.hitc == nil {
		return
	}
	hc := pc.hitc
	if !hc.owners.trackingChanged(seed.schema) {
		return
	}
	row, err := exportedRow(w.row.cols, w.row.args)
	if err != nil {
		return
	}
	m, err := s.rowToMemory(&row)
	if err != nil {
		return
	}
	hc.put(&cachedHit{m: *m, owner: seed.changed, tracked: true}, dbVersion{schema: seed.schema})
}

// exportedRow is the memoryRow a read of the row written with these
// columns (comma-separated, as insertRow.cols) and values would give.
func exportedRow(cols string, args []any) (memoryRow, error) {
	var r memoryRow
	found, i := 0, 0
	for rest := cols; rest != ""; i++ {
		var name string
		name, rest, _ = strings.Cut(rest, ",")
		if i >= len(args) {
			return r, errors.New("memory row: columns and values differ")
		}
		p := r.column(name)
		if p == nil {
			continue
		}
		v, err := storedText(args[i])
		if err != nil {
			return r, err
		}
		*p = v
		found++
	}
	if i != len(args) {
		return r, errors.New("memory row: columns and values differ")
	}
	if found != len(memoryColumns) {
		return r, errors.New("memory row: a column is missing")
	}
	return r, nil
}

// column is r's field for the column name (one of memoryColumns), or nil
// for a column it does not hold.
func (r *memoryRow) column(name string) *string {
	switch name {
	case "id":
		return &r.ID
	case "owner":
		return &r.Owner
	case "text":
		return &r.Text
	case "permission":
		return &r.Permission
	case "shared_users":
		return &r.SharedUsers
	case "shared_groups":
		return &r.SharedGroups
	case "expires_at":
		return &r.ExpiresAt
	case "created":
		return &r.Created
	case "updated":
		return &r.Updated
	}
	return nil
}

// storedText is v as SQLite stores a bound value and a read into a string
// gives it back; an error for anything else (NULL, numbers).
func storedText(v any) (string, error) {
	if vr, ok := v.(driver.Valuer); ok {
		x, err := vr.Value()
		if err != nil {
			return "", err
		}
		v = x
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	}
	return "", errors.New("memory row: a value is not text")
}
