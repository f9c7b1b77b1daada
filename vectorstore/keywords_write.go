package vectorstore

// The keyword index's writes: IndexDocs, DeleteDocs, ResetKeywords. The
// query side is in keywords.go.
//
// What a write costs is mostly SQLite statements, so the write path keeps
// their number and size down:
//   - a memory indexed again at the same place in its owner's timeline (an
//     update of its text, expiry or sharing: its owner and creation time
//     never change) keeps its integer key, so its neighbours' links stay
//     as they are and nothing is relinked; its postings are rewritten only
//     when its terms changed (not for a permission change), and document
//     frequencies move only for the terms it gained or lost;
//   - new memories are relinked one owner at a time: one read of the
//     owner's timeline around all of the batch's new places, and only the
//     rows whose neighbours changed are written;
//   - statements are written with sequential placeholders, which SQLite
//     binds by position (see wsql);
//   - no statement opens a statement journal on SQLite (see exec).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// wsql is sql for write statements whose $n placeholders appear once each,
// in order ($1, $2, …): on SQLite they become plain ?, which the driver
// binds by position. (For ?NNN, modernc's driver looks every parameter's
// name up and compares it with every argument's number as a string: in a
// 300-parameter insert that was a sixth of a write's CPU.) Placeholders
// out of order keep the numbered form.
func (k *sqlKeywords) wsql(s string) string {
	if !k.sqlite {
		return k.names.Replace(s)
	}
	s = k.names.Replace(s)
	var b strings.Builder
	b.Grow(len(s))
	next := 1
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) || s[i+1] < '0' || s[i+1] > '9' {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(s[i+1 : j]); err != nil || n != next {
			return placeholderRE.ReplaceAllString(s, "?$1")
		}
		next++
		b.WriteByte('?')
		i = j
	}
	return b.String()
}

// exec runs a write statement q (before wsql) in the write transaction
// tx.
//
// On SQLite, every write statement that changes several rows names a
// conflict resolution that cannot abort it half-way, {fail} (OR FAIL) or
// DO NOTHING, and none is an upsert's DO UPDATE (which always aborts):
// SQLite gives a statement that may abort after changing some rows inside
// a transaction a statement journal, a copy of every page it changes,
// kept with temp_store=MEMORY in 1 KiB chunks of malloc'd memory and
// freed when the statement ends. modernc's allocator maps and unmaps
// memory for those chunks nearly every time: the keyword index's writes
// spent ~40% of their CPU on it (docs/performance.md, "Statement
// journals"). Statement-level atomicity buys nothing here: a failed
// statement fails the write, whose transaction is rolled back whole.
// TestKeywordWritesOpenNoStatementJournal checks the statements.
func (k *sqlKeywords) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) error {
	q = k.wsql(q)
	if k.onWrite != nil {
		k.onWrite(q)
	}
	var err error
	if st := k.wstmt(ctx, tx, q); st != nil {
		_, err = st.ExecContext(ctx, args...)
	} else {
		_, err = tx.ExecContext(ctx, q, args...)
	}
	return err
}

// IndexDocs replaces docs and keeps df and the stats exact.
func (k *sqlKeywords) IndexDocs(ctx context.Context, docs ...KeywordDoc) error {
	if len(docs) == 0 {
		return nil
	}
	// last write of an id wins
	byID := make(map[string]int, len(docs))
	var uniq []KeywordDoc
	for _, d := range docs {
		if d.ID == "" {
			return errors.New("keyword index: doc with empty id")
		}
		if i, ok := byID[d.ID]; ok {
			uniq[i] = d
			continue
		}
		byID[d.ID] = len(uniq)
		uniq = append(uniq, d)
	}
	if err := k.ready(ctx); err != nil {
		return err
	}
	if err := k.prepareWrites(ctx); err != nil {
		return k.wrapErr("prepare", err)
	}
	tx, unlock, err := k.beginWrite(ctx)
	if err != nil {
		return k.wrapErr("index", err)
	}
	defer unlock()
	keys, st, err := k.indexTx(ctx, tx, uniq)
	if err != nil {
		_ = tx.Rollback()
		return k.wrapErr("index", err)
	}
	// the postings cache takes the rows as committed, with their keys,
	// instead of reading them back (built before the commit, while the
	// cache's state says whether it wants them)
	ids := docIDs(uniq)
	p := pendingWrite{ids: ids}
	if k.wantsRows() {
		p = pendingWrite{rows: make([]cacheRow, len(uniq)), stats: st.stats, ok: st.ok}
		for i := range uniq {
			p.rows[i] = committedRow(&uniq[i], keys[i])
		}
	}
	if err := k.commit(tx, p, ids); err != nil {
		return k.wrapErr("index", err)
	}
	return nil
}

// writtenStats is the stats row as a write left it; ok is false when the
// write did not read it back (PostgreSQL, where other processes write
// too).
type writtenStats struct {
	stats cacheStats
	ok    bool
}

// commit commits a write and notes it for the postings cache: both under
// noteMu, so that the cache applies this process's writes in the order
// they committed (on PostgreSQL two of them may commit at once; on SQLite
// wmu orders them already). The announcement to other processes comes
// after: it may wait for a pooled connection, which the writers queued
// behind noteMu hold.
func (k *sqlKeywords) commit(tx *sql.Tx, p pendingWrite, ids []string) error {
	k.noteMu.Lock()
	if err := tx.Commit(); err != nil {
		k.noteMu.Unlock()
		return err
	}
	if k.cache != nil {
		k.cache.note(p)
	}
	k.noteMu.Unlock()
	if k.cache != nil && k.cache.follower != nil {
		k.cache.follower.announce(ids)
	}
	return nil
}

// indexedDoc is a memory as the index holds it before a write.
type indexedDoc struct {
	key     int64
	owner   string
	created int64
	len     int64
	terms   map[int64]int
}

type posting struct {
	term, doc int64
	tf        int
}

type share struct {
	doc             int64
	kind, principal string
}

// indexTx writes docs in tx and returns the key each one has (in the
// order of docs) and the stats row as it left it.
func (k *sqlKeywords) indexTx(ctx context.Context, tx *sql.Tx, docs []KeywordDoc) ([]int64, writtenStats, error) {
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	keys := make([]int64, len(docs))
	old, err := k.indexedDocs(ctx, tx, ids)
	if err != nil {
		return nil, writtenStats{}, err
	}
	delta := map[int64]int{}
	var dn, dlen int64
	var (
		pos      []docPos     // places where the timeline changed
		fresh    []KeywordDoc // inserted with new keys
		freshAt  []int        // their places in docs
		kept     []KeywordDoc // same place: key and neighbours kept
		keptKeys []int64
		dropKeys []int64 // rows removed (a memory that moved in the timeline)
		rewrite  []int64 // kept keys whose postings are rewritten
		posts    []posting
		shares   []share
	)
	addShares := func(key int64, m Meta) {
		for _, u := range m.SharedUsers {
			shares = append(shares, share{key, "u", u})
		}
		for _, g := range m.SharedGroups {
			shares = append(shares, share{key, "g", g})
		}
	}
	for at, d := range docs {
		o := old[d.ID]
		if o != nil && o.owner == d.Meta.OwnerID && o.created == d.Meta.CreatedAt.UnixMicro() {
			keys[at] = o.key
			kept = append(kept, d)
			keptKeys = append(keptKeys, o.key)
			dlen += int64(d.Len) - o.len
			addShares(o.key, d.Meta)
			if maps.Equal(o.terms, d.Terms) {
				continue
			}
			rewrite = append(rewrite, o.key)
			for t := range o.terms {
				if _, ok := d.Terms[t]; !ok {
					delta[t]--
				}
			}
			for t, tf := range d.Terms {
				if _, ok := o.terms[t]; !ok {
					delta[t]++
				}
				posts = append(posts, posting{t, o.key, tf})
			}
			continue
		}
		if o != nil {
			// moved in the timeline (not done by Picard, whose memories
			// keep owner and creation time): removed and inserted anew
			dropKeys = append(dropKeys, o.key)
			pos = append(pos, docPos{o.owner, o.created, d.ID})
			for t := range o.terms {
				delta[t]--
			}
			dn--
			dlen -= o.len
		}
		fresh = append(fresh, d)
		freshAt = append(freshAt, at)
	}
	if err := k.deleteRows(ctx, tx, deletePostingsStmt, append(slices.Clone(dropKeys), rewrite...)); err != nil {
		return nil, writtenStats{}, err
	}
	if err := k.deleteRows(ctx, tx, deleteSharesStmt, append(slices.Clone(dropKeys), keptKeys...)); err != nil {
		return nil, writtenStats{}, err
	}
	if err := k.deleteRows(ctx, tx, deleteDocsStmt, dropKeys); err != nil {
		return nil, writtenStats{}, err
	}
	if err := k.updateKept(ctx, tx, kept, keptKeys); err != nil {
		return nil, writtenStats{}, err
	}
	if len(fresh) > 0 {
		// fresh integer keys, in the order of docs (so two indexes
		// written in the same order number their memories alike)
		var last int64
		if err := k.wrow(ctx, tx, allocKeysSQL, len(fresh)).Scan(&last); err != nil {
			return nil, writtenStats{}, fmt.Errorf("allocate keys: %w", err)
		}
		first := last - int64(len(fresh)) + 1
		for i, d := range fresh {
			key := first + int64(i)
			keys[freshAt[i]] = key
			for t, tf := range d.Terms {
				posts = append(posts, posting{t, key, tf})
				delta[t]++
			}
			addShares(key, d.Meta)
			dn++
			dlen += int64(d.Len)
			pos = append(pos, docPos{d.Meta.OwnerID, d.Meta.CreatedAt.UnixMicro(), d.ID})
		}
		a := make([]any, 0, 7*len(fresh))
		for i, d := range fresh {
			a = append(a, first+int64(i), d.ID, d.Meta.OwnerID, d.Meta.Permission, micros(d.Meta.ExpiresAt), d.Meta.CreatedAt.UnixMicro(), d.Len)
		}
		if err := k.execRows(ctx, tx, a, insertDocsStmt); err != nil {
			return nil, writtenStats{}, fmt.Errorf("insert docs: %w", err)
		}
	}
	a := make([]any, 0, 3*len(posts))
	for _, p := range posts {
		a = append(a, p.term, p.doc, p.tf)
	}
	if err := k.execRows(ctx, tx, a, insertPostingsStmt); err != nil {
		return nil, writtenStats{}, fmt.Errorf("insert postings: %w", err)
	}
	a = make([]any, 0, 3*len(shares))
	for _, s := range shares {
		a = append(a, s.doc, s.kind, s.principal)
	}
	if err := k.execRows(ctx, tx, a, insertSharesStmt); err != nil {
		return nil, writtenStats{}, fmt.Errorf("insert shares: %w", err)
	}
	if err := k.relink(ctx, tx, pos); err != nil {
		return nil, writtenStats{}, err
	}
	st, err := k.applyDelta(ctx, tx, delta, dn, dlen)
	return keys, st, err
}

// indexedDocs reads the rows and terms the index holds for ids.
func (k *sqlKeywords) indexedDocs(ctx context.Context, tx *sql.Tx, ids []string) (map[string]*indexedDoc, error) {
	out := map[string]*indexedDoc{}
	byKey := map[int64]*indexedDoc{}
	for rest := toAnys(ids); len(rest) > 0; {
		p := k.pieceRows(len(rest))
		rows, err := k.wquery(ctx, tx, oldDocsStmt.text(p), rest[:p]...)
		rest = rest[p:]
		if err != nil {
			return nil, fmt.Errorf("old docs: %w", err)
		}
		for rows.Next() {
			var id string
			d := &indexedDoc{terms: map[int64]int{}}
			if err := rows.Scan(&d.key, &id, &d.owner, &d.created, &d.len); err != nil {
				rows.Close()
				return nil, fmt.Errorf("old docs: %w", err)
			}
			out[id], byKey[d.key] = d, d
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("old docs: %w", err)
		}
	}
	keys := make([]int64, 0, len(byKey))
	for key := range byKey {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for rest := toAnys(keys); len(rest) > 0; {
		p := k.pieceRows(len(rest))
		rows, err := k.wquery(ctx, tx, oldPostingsStmt.text(p), rest[:p]...)
		rest = rest[p:]
		if err != nil {
			return nil, fmt.Errorf("old postings: %w", err)
		}
		for rows.Next() {
			var key, t int64
			var tf int
			if err := rows.Scan(&key, &t, &tf); err != nil {
				rows.Close()
				return nil, fmt.Errorf("old postings: %w", err)
			}
			byKey[key].terms[t] = tf
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("old postings: %w", err)
		}
	}
	return out, nil
}

// deleteRows deletes the rows whose key is one of keys with del, one of
// the DELETE … IN statements.
func (k *sqlKeywords) deleteRows(ctx context.Context, tx *sql.Tx, del rowStmt, keys []int64) error {
	if err := k.execRows(ctx, tx, toAnys(keys), del); err != nil {
		return fmt.Errorf("delete old rows: %w", err)
	}
	return nil
}

// updateKept writes the permission, expiry and length of memories indexed
// again at their place.
func (k *sqlKeywords) updateKept(ctx context.Context, tx *sql.Tx, docs []KeywordDoc, keys []int64) error {
	a := make([]any, 0, 4*len(docs))
	for i, d := range docs {
		a = append(a, keys[i], d.Meta.Permission, micros(d.Meta.ExpiresAt), d.Len)
	}
	if err := k.execRows(ctx, tx, a, updateKeptStmt); err != nil {
		return fmt.Errorf("update docs: %w", err)
	}
	return nil
}

// removeTx deletes ids' rows and returns the df deltas and stats changes.
func (k *sqlKeywords) removeTx(ctx context.Context, tx *sql.Tx, ids []string) (map[int64]int, int64, int64, []docPos, error) {
	old, err := k.indexedDocs(ctx, tx, ids)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	delta := map[int64]int{}
	var dn, dlen int64
	var pos []docPos
	var keys []int64
	for _, id := range ids {
		d := old[id]
		if d == nil {
			continue
		}
		delete(old, id) // an id given twice is removed once
		keys = append(keys, d.key)
		pos = append(pos, docPos{d.owner, d.created, id})
		for t := range d.terms {
			delta[t]--
		}
		dn--
		dlen -= d.len
	}
	for _, del := range []rowStmt{deletePostingsStmt, deleteSharesStmt, deleteDocsStmt} {
		if err := k.deleteRows(ctx, tx, del, keys); err != nil {
			return nil, 0, 0, nil, err
		}
	}
	return delta, dn, dlen, pos, nil
}

// docPos is a memory's place in its owner's timeline.
type docPos struct {
	owner   string
	created int64
	id      string
}

func (p docPos) less(q docPos) bool {
	if p.created != q.created {
		return p.created < q.created
	}
	return p.id < q.id
}

// neighbours are a memory's prev1, prev2, next1, next2 keys (nil: none).
type neighbours [4]*int64

// relinkBudget bounds the rows one owner's relink reads around its
// changed places; a batch whose places are spread further apart in a long
// timeline is relinked place by place instead.
var relinkBudget = func(places int) int { return 64 + 8*places }

// relink recomputes the neighbour columns (prev1, prev2, next1, next2) of
// every memory within two places of the given positions, which are where
// memories were inserted or removed, and writes those that changed. It
// reads only the timeline order, so all inserts and deletes of the
// transaction come first.
func (k *sqlKeywords) relink(ctx context.Context, tx *sql.Tx, positions []docPos) error {
	byOwner := map[string][]docPos{}
	for _, p := range positions {
		byOwner[p.owner] = append(byOwner[p.owner], p)
	}
	owners := slices.Sorted(maps.Keys(byOwner))
	want := map[int64]neighbours{}
	for _, owner := range owners {
		ps := byOwner[owner]
		slices.SortFunc(ps, func(x, y docPos) int {
			switch {
			case x.less(y):
				return -1
			case y.less(x):
				return 1
			}
			return 0
		})
		ps = slices.Compact(ps)
		ok, err := k.relinkWindow(ctx, tx, ps, want)
		if err != nil {
			return err
		}
		if !ok {
			for _, p := range ps {
				if err := k.relinkAround(ctx, tx, p, want); err != nil {
					return err
				}
			}
		}
	}
	keys := slices.Sorted(maps.Keys(want))
	a := make([]any, 0, 5*len(keys))
	for _, key := range keys {
		a = append(a, key)
		for _, v := range want[key] {
			var x any
			if v != nil {
				x = *v
			}
			a = append(a, x)
		}
	}
	if err := k.execRows(ctx, tx, a, relinkStmt); err != nil {
		return fmt.Errorf("relink neighbours: %w", err)
	}
	return nil
}

// relinkWindow relinks one owner's changed places ps (sorted) from one
// read of the timeline: the 4 memories before the first place, then every
// memory from it on until 4 past the last place. Rows whose neighbours
// already are right are not written. It reports false, having done
// nothing, when that window is longer than relinkBudget.
func (k *sqlKeywords) relinkWindow(ctx context.Context, tx *sql.Tx, ps []docPos, want map[int64]neighbours) (bool, error) {
	type row struct {
		key  int64
		pos  docPos
		have neighbours
	}
	scan := func(rows *sql.Rows, withPos bool) (row, error) {
		var r row
		var h [4]sql.NullInt64
		var err error
		if withPos {
			err = rows.Scan(&r.key, &r.pos.created, &r.pos.id, &h[0], &h[1], &h[2], &h[3])
		} else {
			err = rows.Scan(&r.key, &h[0], &h[1], &h[2], &h[3])
		}
		for i, v := range h {
			if v.Valid {
				x := v.Int64
				r.have[i] = &x
			}
		}
		return r, err
	}
	first, last := ps[0], ps[len(ps)-1]
	rows, err := k.wquery(ctx, tx, windowBeforeSQL, first.owner, first.created, first.id)
	if err != nil {
		return false, fmt.Errorf("timeline: %w", err)
	}
	var before []row
	for rows.Next() {
		r, err := scan(rows, false)
		if err != nil {
			rows.Close()
			return false, fmt.Errorf("timeline: %w", err)
		}
		before = append(before, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("timeline: %w", err)
	}
	budget := relinkBudget(len(ps))
	rows, err = k.wquery(ctx, tx, windowFromSQL, first.owner, first.created, first.id, budget+1)
	if err != nil {
		return false, fmt.Errorf("timeline: %w", err)
	}
	var window []row
	past, atEnd := 0, true
	for rows.Next() {
		if past == 4 {
			atEnd = false // the window is complete; more rows follow
			break
		}
		if len(window) == budget {
			rows.Close()
			return false, nil
		}
		r, err := scan(rows, true)
		if err != nil {
			rows.Close()
			return false, fmt.Errorf("timeline: %w", err)
		}
		r.pos.owner = first.owner
		if last.less(r.pos) {
			past++
		}
		window = append(window, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("timeline: %w", err)
	}
	atStart := len(before) < 4
	slices.Reverse(before)
	l := append(before, window...)
	at := func(i int) *int64 {
		if i < 0 || i >= len(l) {
			return nil
		}
		return &l[i].key
	}
	for i, r := range l {
		if (i < 2 && !atStart) || (len(l)-1-i < 2 && !atEnd) {
			continue // further than two places from every change
		}
		w := neighbours{at(i - 1), at(i - 2), at(i + 1), at(i + 2)}
		if !sameNeighbours(w, r.have) {
			want[r.key] = w
		}
	}
	return true, nil
}

func sameNeighbours(a, b neighbours) bool {
	for i := range a {
		if (a[i] == nil) != (b[i] == nil) || (a[i] != nil && *a[i] != *b[i]) {
			return false
		}
	}
	return true
}

// relinkAround recomputes the neighbours of the memories within two places
// of p, whatever they hold now.
func (k *sqlKeywords) relinkAround(ctx context.Context, tx *sql.Tx, p docPos, want map[int64]neighbours) error {
	before, err := k.timeline(ctx, tx, p, "<=", "DESC")
	if err != nil {
		return err
	}
	after, err := k.timeline(ctx, tx, p, ">", "ASC")
	if err != nil {
		return err
	}
	startB, endB := len(before) < 5, len(after) < 4
	slices.Reverse(before)
	l := append(before, after...)
	at := func(i int) *int64 {
		if i < 0 || i >= len(l) {
			return nil
		}
		return &l[i]
	}
	for i, key := range l {
		if (i >= 2 || startB) && (len(l)-1-i >= 2 || endB) {
			want[key] = neighbours{at(i - 1), at(i - 2), at(i + 1), at(i + 2)}
		}
	}
	return nil
}

// timeline lists the keys of up to 5 (before, with p itself) or 4 (after)
// memories of p's owner next to p's place.
func (k *sqlKeywords) timeline(ctx context.Context, tx *sql.Tx, p docPos, cmp, order string) ([]int64, error) {
	n := 4
	if cmp == "<=" {
		n = 5
	}
	rows, err := k.wquery(ctx, tx, timelineSQL(cmp, order), p.owner, p.created, p.id, n)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var key int64
		if err := rows.Scan(&key); err != nil {
			return nil, err
		}
		out = append(out, key)
	}
	return out, rows.Err()
}

// applyDelta adds df changes (in term order, so concurrent writers on
// PostgreSQL lock rows in the same order), drops terms no memory holds any
// more and updates the stats row.
func (k *sqlKeywords) applyDelta(ctx context.Context, tx *sql.Tx, delta map[int64]int, dn, dlen int64) (writtenStats, error) {
	terms := make([]int64, 0, len(delta))
	var gone []int64
	for t, d := range delta {
		if d != 0 {
			terms = append(terms, t)
		}
		if d < 0 {
			gone = append(gone, t)
		}
	}
	slices.Sort(terms)
	a := make([]any, 0, 2*len(terms))
	for _, t := range terms {
		a = append(a, t, delta[t])
	}
	stmts := []rowStmt{upsertDFStmt}
	if k.sqlite {
		stmts = []rowStmt{updateDFStmt, insertDFStmt} // see updateDFStmt
	}
	if err := k.execRows(ctx, tx, a, stmts...); err != nil {
		return writtenStats{}, fmt.Errorf("update df: %w", err)
	}
	slices.Sort(gone)
	if err := k.execRows(ctx, tx, toAnys(gone), dropTermsStmt); err != nil {
		return writtenStats{}, fmt.Errorf("drop unused terms: %w", err)
	}
	if k.cache == nil || k.cache.crossed {
		if dn != 0 || dlen != 0 {
			if err := k.exec(ctx, tx, updateStatsSQL, dn, dlen); err != nil {
				return writtenStats{}, fmt.Errorf("update stats: %w", err)
			}
		}
		return writtenStats{}, nil
	}
	// the stats row as this write leaves it, for the postings cache to
	// check its counts against (see pendingWrite)
	q, args := readStatsSQL, []any(nil)
	if dn != 0 || dlen != 0 {
		q, args = updateStatsReturningSQL, []any{dn, dlen}
	}
	var st writtenStats
	if err := k.wrow(ctx, tx, q, args...).Scan(&st.stats.n, &st.stats.total, &st.stats.nextK); err != nil {
		return writtenStats{}, fmt.Errorf("update stats: %w", err)
	}
	st.ok = true
	return st, nil
}

// DeleteDocs removes ids and their terms.
func (k *sqlKeywords) DeleteDocs(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := k.ready(ctx); err != nil {
		return err
	}
	if err := k.prepareWrites(ctx); err != nil {
		return k.wrapErr("prepare", err)
	}
	tx, unlock, err := k.beginWrite(ctx)
	if err != nil {
		return k.wrapErr("delete", err)
	}
	defer unlock()
	delta, dn, dlen, pos, err := k.removeTx(ctx, tx, ids)
	if err == nil {
		err = k.relink(ctx, tx, pos)
	}
	var st writtenStats
	if err == nil {
		st, err = k.applyDelta(ctx, tx, delta, dn, dlen)
	}
	if err != nil {
		_ = tx.Rollback()
		return k.wrapErr("delete", err)
	}
	// the postings cache drops ids without reading them back
	if err := k.commit(tx, pendingWrite{gone: ids, stats: st.stats, ok: st.ok}, ids); err != nil {
		return k.wrapErr("delete", err)
	}
	return nil
}

// ResetKeywords empties every table.
func (k *sqlKeywords) ResetKeywords(ctx context.Context) error {
	if err := k.ready(ctx); err != nil {
		return err
	}
	if err := k.prepareWrites(ctx); err != nil {
		return k.wrapErr("prepare", err)
	}
	tx, unlock, err := k.beginWrite(ctx)
	if err != nil {
		return k.wrapErr("reset", err)
	}
	defer unlock()
	for _, t := range []string{"{postings}", "{shares}", "{docs}", "{terms}"} {
		if err := k.exec(ctx, tx, `DELETE FROM `+t); err != nil {
			_ = tx.Rollback()
			return k.wrapErr("reset", err)
		}
	}
	if err := k.exec(ctx, tx, `UPDATE{fail} {stats} SET n = 0, total_len = 0 WHERE id = 1`); err != nil {
		_ = tx.Rollback()
		return k.wrapErr("reset", err)
	}
	if err := tx.Commit(); err != nil {
		return k.wrapErr("reset", err)
	}
	k.noteWrite() // the postings cache empties
	return nil
}

// kwCheckpointEvery is how often the SQLite keyword index's write-ahead log
// is copied into its database file.
const kwCheckpointEvery = 250 * time.Millisecond

// startCheckpointer runs the SQLite keyword index's WAL checkpoints on a
// connection of their own, every kwCheckpointEvery, instead of inside the
// indexer's commits (the index's connections open with
// wal_autocheckpoint=0). A PASSIVE checkpoint runs beside the writer and
// the readers; the indexer's pass no longer stops for one (they were most
// of its wall time on a busy disk, and writers wait for the indexer when
// its backlog is full). Commits stay fully synced.
func (k *sqlKeywords) startCheckpointer(path string) error {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	ck, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("open keyword index checkpointer: %w", err)
	}
	ck.SetMaxOpenConns(1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(kwCheckpointEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			var busy, log, done int
			_ = ck.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done)
		}
	}()
	var once sync.Once
	k.stopCk = func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			// the last connection to close checkpoints the rest
			_ = ck.Close()
		})
	}
	return nil
}
