package vectorstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// KeywordDoc is one memory as the keyword index sees it: its filter
// metadata and its hashed terms (see TermHasher), never its text.
type KeywordDoc struct {
	ID    string
	Meta  Meta
	Terms map[int64]int // hashed term -> frequency in the memory
	Len   int           // number of tokens
}

// KeywordQuery is a BM25 query over hashed terms.
type KeywordQuery struct {
	Terms  map[int64]float64 // hashed term -> query weight (usually its count)
	Filter Filter
	Limit  int
	K1, B  float64
	// ContextNear and ContextFar (0 turns them off) let each memory add
	// ContextNear × the best score of its ±1 neighbours in time and
	// ContextFar × the best of its ±2 neighbours (same owner; only
	// memories passing Filter lend or receive).
	ContextNear, ContextFar float64
	// IDFPower raises each term's idf to this power (0 counts as 1, plain
	// BM25); above 1 a rare query word outweighs several common ones.
	IDFPower float64
	// Budget bounds the work of one query: candidates come from the
	// rarest query terms whose postings add up to at most Budget (0: every
	// term, exact BM25 over all matching memories).
	Budget int
}

// KeywordHit is one keyword result: its own BM25 score, the best scores its
// neighbours lend (before weighting) and the total it was ranked by.
type KeywordHit struct {
	ID              string
	Score           float64
	BM25, Near, Far float64
}

// KeywordIndex is a BM25 index over hashed terms, filtered by memory
// metadata inside the query. Both implementations (SQLite for the embedded
// store, PostgreSQL beside pgvector) run the same SQL and give the same
// ranking.
type KeywordIndex interface {
	// IndexDocs inserts or replaces docs (their old terms are removed).
	IndexDocs(ctx context.Context, docs ...KeywordDoc) error
	// DeleteDocs removes ids and their terms; unknown ids are ignored.
	DeleteDocs(ctx context.Context, ids ...string) error
	// SearchKeywords returns up to q.Limit memories passing q.Filter that
	// contain a query term (or, with context, neighbour one that does),
	// best total score first.
	SearchKeywords(ctx context.Context, q KeywordQuery) ([]KeywordHit, error)
	// DocTerms returns the hashed terms of ids (pseudo-relevance feedback).
	DocTerms(ctx context.Context, ids []string) (map[string]map[int64]int, error)
	// DocFreqs returns how many memories hold each term, the number of
	// memories and their average length.
	DocFreqs(ctx context.Context, terms []int64) (df map[int64]int, n int, avgLen float64, err error)
	// KeywordCount returns how many memories the index holds.
	KeywordCount(ctx context.Context) (int, error)
	// ResetKeywords empties the index.
	ResetKeywords(ctx context.Context) error
}

// KeywordProvider is a Store that also keeps a keyword index.
type KeywordProvider interface {
	Keywords() (KeywordIndex, error)
}

// sqlKeywords is KeywordIndex on database/sql, for SQLite and PostgreSQL.
//
// Tables: docs (id, owner, permission, expiry and creation as Unix
// microseconds, length), postings (term, doc, tf), shares (doc, kind u|g,
// principal), terms (term, df) and stats (one row: n, total length). BM25
// is computed by one SQL statement on both engines; idf comes from terms
// and stats, which every write keeps exact in the same transaction.
type sqlKeywords struct {
	db     *sql.DB
	sqlite bool
	names  *strings.Replacer
	// ensure creates the tables; nil once done.
	ensureMu sync.Mutex
	ensure   func(ctx context.Context) error
	wmu      sync.Mutex // SQLite: one writer at a time
	wrapErr  func(op string, err error) error
}

var placeholderRE = regexp.MustCompile(`\$(\d+)`)

func (k *sqlKeywords) sql(s string) string {
	s = k.names.Replace(s)
	if k.sqlite {
		s = placeholderRE.ReplaceAllString(s, "?$1")
	}
	return s
}

func (k *sqlKeywords) ready(ctx context.Context) error {
	k.ensureMu.Lock()
	defer k.ensureMu.Unlock()
	if k.ensure == nil {
		return nil
	}
	if err := k.ensure(ctx); err != nil {
		return k.wrapErr("create keyword tables", err)
	}
	k.ensure = nil
	return nil
}

// keywordDDL creates the tables; {x} are replaced by table names.
var keywordDDL = []string{
	`CREATE TABLE IF NOT EXISTS {docs} (
		id         TEXT PRIMARY KEY,
		owner_id   TEXT NOT NULL,
		permission TEXT NOT NULL,
		expires_at BIGINT,
		created_at BIGINT NOT NULL,
		len        INTEGER NOT NULL,
		prev1      TEXT,
		prev2      TEXT,
		next1      TEXT,
		next2      TEXT)`,
	`CREATE INDEX IF NOT EXISTS {docs_owner_time} ON {docs} (owner_id, created_at, id)`,
	`CREATE TABLE IF NOT EXISTS {postings} (
		term   BIGINT NOT NULL,
		doc_id TEXT NOT NULL,
		tf     INTEGER NOT NULL,
		PRIMARY KEY (term, doc_id))`,
	`CREATE INDEX IF NOT EXISTS {postings_doc} ON {postings} (doc_id, term, tf)`,
	`CREATE TABLE IF NOT EXISTS {shares} (
		doc_id    TEXT NOT NULL,
		kind      TEXT NOT NULL,
		principal TEXT NOT NULL,
		PRIMARY KEY (doc_id, kind, principal))`,
	`CREATE TABLE IF NOT EXISTS {terms} (
		term BIGINT PRIMARY KEY,
		df   INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS {stats} (
		id        INTEGER PRIMARY KEY,
		n         BIGINT NOT NULL,
		total_len BIGINT NOT NULL)`,
	`INSERT INTO {stats} (id, n, total_len) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING`,
}

func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

const kwChunk = 100 // rows per multi-row statement

func placeholders(a *sqlArgs, vals ...any) string {
	ps := make([]string, len(vals))
	for i, v := range vals {
		ps[i] = a.add(v)
	}
	return strings.Join(ps, ", ")
}

func (k *sqlKeywords) beginWrite(ctx context.Context) (*sql.Tx, func(), error) {
	if k.sqlite {
		k.wmu.Lock()
	}
	unlock := func() {
		if k.sqlite {
			k.wmu.Unlock()
		}
	}
	tx, err := k.db.BeginTx(ctx, nil)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	if !k.sqlite {
		// one keyword writer at a time, across processes too: a memory
		// indexed by two writers at once (the request and the
		// reconciler) must not be inserted twice, and the df and stats
		// rows are shared by every write anyway
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('picard-keywords', 0))"); err != nil {
			_ = tx.Rollback()
			unlock()
			return nil, nil, err
		}
	}
	return tx, unlock, nil
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
	tx, unlock, err := k.beginWrite(ctx)
	if err != nil {
		return k.wrapErr("index", err)
	}
	defer unlock()
	if err := k.indexTx(ctx, tx, uniq); err != nil {
		_ = tx.Rollback()
		return k.wrapErr("index", err)
	}
	if err := tx.Commit(); err != nil {
		return k.wrapErr("index", err)
	}
	return nil
}

func (k *sqlKeywords) indexTx(ctx context.Context, tx *sql.Tx, docs []KeywordDoc) error {
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	delta, dn, dlen, pos, err := k.removeTx(ctx, tx, ids)
	if err != nil {
		return err
	}
	type posting struct {
		term int64
		doc  string
		tf   int
	}
	var posts []posting
	var shares [][3]string
	for _, d := range docs {
		for t, tf := range d.Terms {
			posts = append(posts, posting{t, d.ID, tf})
			delta[t]++
		}
		for _, u := range d.Meta.SharedUsers {
			shares = append(shares, [3]string{d.ID, "u", u})
		}
		for _, g := range d.Meta.SharedGroups {
			shares = append(shares, [3]string{d.ID, "g", g})
		}
		dn++
		dlen += int64(d.Len)
		pos = append(pos, docPos{d.Meta.OwnerID, d.Meta.CreatedAt.UnixMicro(), d.ID})
	}
	for lo := 0; lo < len(docs); lo += kwChunk {
		a := sqlArgs{}
		var rows []string
		for _, d := range docs[lo:min(lo+kwChunk, len(docs))] {
			rows = append(rows, "("+placeholders(&a, d.ID, d.Meta.OwnerID, d.Meta.Permission, micros(d.Meta.ExpiresAt), d.Meta.CreatedAt.UnixMicro(), d.Len)+")")
		}
		if _, err := tx.ExecContext(ctx, k.sql(`INSERT INTO {docs} (id, owner_id, permission, expires_at, created_at, len) VALUES `+strings.Join(rows, ", ")), a...); err != nil {
			return fmt.Errorf("insert docs: %w", err)
		}
	}
	for lo := 0; lo < len(posts); lo += kwChunk {
		a := sqlArgs{}
		var rows []string
		for _, p := range posts[lo:min(lo+kwChunk, len(posts))] {
			rows = append(rows, "("+placeholders(&a, p.term, p.doc, p.tf)+")")
		}
		if _, err := tx.ExecContext(ctx, k.sql(`INSERT INTO {postings} (term, doc_id, tf) VALUES `+strings.Join(rows, ", ")), a...); err != nil {
			return fmt.Errorf("insert postings: %w", err)
		}
	}
	for lo := 0; lo < len(shares); lo += kwChunk {
		a := sqlArgs{}
		var rows []string
		for _, s := range shares[lo:min(lo+kwChunk, len(shares))] {
			rows = append(rows, "("+placeholders(&a, s[0], s[1], s[2])+")")
		}
		if _, err := tx.ExecContext(ctx, k.sql(`INSERT INTO {shares} (doc_id, kind, principal) VALUES `+strings.Join(rows, ", ")+` ON CONFLICT DO NOTHING`), a...); err != nil {
			return fmt.Errorf("insert shares: %w", err)
		}
	}
	if err := k.relink(ctx, tx, pos); err != nil {
		return err
	}
	return k.applyDelta(ctx, tx, delta, dn, dlen)
}

// removeTx deletes ids' rows and returns the df deltas and stats changes.
func (k *sqlKeywords) removeTx(ctx context.Context, tx *sql.Tx, ids []string) (map[int64]int, int64, int64, []docPos, error) {
	delta := map[int64]int{}
	var dn, dlen int64
	var pos []docPos
	for lo := 0; lo < len(ids); lo += kwChunk {
		chunk := ids[lo:min(lo+kwChunk, len(ids))]
		a := sqlArgs{}
		in := placeholders(&a, toAnys(chunk)...)
		rows, err := tx.QueryContext(ctx, k.sql(`SELECT term FROM {postings} WHERE doc_id IN (`+in+`)`), a...)
		if err != nil {
			return nil, 0, 0, nil, fmt.Errorf("old postings: %w", err)
		}
		for rows.Next() {
			var t int64
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return nil, 0, 0, nil, err
			}
			delta[t]--
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, 0, nil, err
		}
		rows, err = tx.QueryContext(ctx, k.sql(`SELECT id, owner_id, created_at, len FROM {docs} WHERE id IN (`+in+`)`), a...)
		if err != nil {
			return nil, 0, 0, nil, fmt.Errorf("old docs: %w", err)
		}
		for rows.Next() {
			var p docPos
			var l int64
			if err := rows.Scan(&p.id, &p.owner, &p.created, &l); err != nil {
				rows.Close()
				return nil, 0, 0, nil, err
			}
			pos = append(pos, p)
			dn--
			dlen -= l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, 0, nil, err
		}
		for _, t := range []string{"{postings}", "{shares}"} {
			if _, err := tx.ExecContext(ctx, k.sql(`DELETE FROM `+t+` WHERE doc_id IN (`+in+`)`), a...); err != nil {
				return nil, 0, 0, nil, fmt.Errorf("delete old rows: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, k.sql(`DELETE FROM {docs} WHERE id IN (`+in+`)`), a...); err != nil {
			return nil, 0, 0, nil, fmt.Errorf("delete old docs: %w", err)
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

// relink recomputes the neighbour columns (prev1, prev2, next1, next2) of
// every memory within two places of the given positions, which are where
// memories were inserted or removed. It reads only the timeline order, so
// all inserts and deletes of the transaction come first.
func (k *sqlKeywords) relink(ctx context.Context, tx *sql.Tx, positions []docPos) error {
	want := map[string][4]any{}
	done := map[docPos]bool{}
	for _, p := range positions {
		if done[p] {
			continue
		}
		done[p] = true
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
		at := func(i int) any {
			if i < 0 || i >= len(l) {
				return nil
			}
			return l[i]
		}
		for i, id := range l {
			if (i >= 2 || startB) && (len(l)-1-i >= 2 || endB) {
				want[id] = [4]any{at(i - 1), at(i - 2), at(i + 1), at(i + 2)}
			}
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for lo := 0; lo < len(ids); lo += kwChunk {
		a := sqlArgs{}
		var rows []string
		for _, id := range ids[lo:min(lo+kwChunk, len(ids))] {
			w := want[id]
			row := "(CAST(" + a.add(id) + " AS TEXT)"
			for _, v := range w {
				row += ", CAST(" + a.add(v) + " AS TEXT)"
			}
			rows = append(rows, row+")")
		}
		sub := func(col string) string { return "(SELECT v." + col + " FROM v WHERE v.id = d.id)" }
		q := `WITH v (id, p1, p2, n1, n2) AS (VALUES ` + strings.Join(rows, ", ") + `)
			UPDATE {docs} AS d SET prev1 = ` + sub("p1") + `, prev2 = ` + sub("p2") + `, next1 = ` + sub("n1") + `, next2 = ` + sub("n2") + `
			WHERE d.id IN (SELECT id FROM v)`
		if _, err := tx.ExecContext(ctx, k.sql(q), a...); err != nil {
			return fmt.Errorf("relink neighbours: %w", err)
		}
	}
	return nil
}

// timeline lists up to 5 (before, with p itself) or 4 (after) ids of p's
// owner next to p's place.
func (k *sqlKeywords) timeline(ctx context.Context, tx *sql.Tx, p docPos, cmp, order string) ([]string, error) {
	n := "4"
	if cmp == "<=" {
		n = "5"
	}
	rows, err := tx.QueryContext(ctx, k.sql(`SELECT id FROM {docs} WHERE owner_id = $1 AND (created_at, id) `+cmp+
		` ($2, $3) ORDER BY created_at `+order+`, id `+order+` LIMIT `+n), p.owner, p.created, p.id)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// applyDelta adds df changes (in term order, so concurrent writers on
// PostgreSQL lock rows in the same order), drops terms no memory holds any
// more and updates the stats row.
func (k *sqlKeywords) applyDelta(ctx context.Context, tx *sql.Tx, delta map[int64]int, dn, dlen int64) error {
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
	for lo := 0; lo < len(terms); lo += kwChunk {
		a := sqlArgs{}
		var rows []string
		for _, t := range terms[lo:min(lo+kwChunk, len(terms))] {
			rows = append(rows, "("+placeholders(&a, t, delta[t])+")")
		}
		if _, err := tx.ExecContext(ctx, k.sql(`INSERT INTO {terms} AS t (term, df) VALUES `+strings.Join(rows, ", ")+
			` ON CONFLICT (term) DO UPDATE SET df = t.df + excluded.df`), a...); err != nil {
			return fmt.Errorf("update df: %w", err)
		}
	}
	slices.Sort(gone)
	for lo := 0; lo < len(gone); lo += kwChunk {
		a := sqlArgs{}
		in := placeholders(&a, toAnys(gone[lo:min(lo+kwChunk, len(gone))])...)
		if _, err := tx.ExecContext(ctx, k.sql(`DELETE FROM {terms} WHERE df <= 0 AND term IN (`+in+`)`), a...); err != nil {
			return fmt.Errorf("drop unused terms: %w", err)
		}
	}
	if dn != 0 || dlen != 0 {
		if _, err := tx.ExecContext(ctx, k.sql(`UPDATE {stats} SET n = n + $1, total_len = total_len + $2 WHERE id = 1`), dn, dlen); err != nil {
			return fmt.Errorf("update stats: %w", err)
		}
	}
	return nil
}

func toAnys[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// DeleteDocs removes ids and their terms.
func (k *sqlKeywords) DeleteDocs(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := k.ready(ctx); err != nil {
		return err
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
	if err == nil {
		err = k.applyDelta(ctx, tx, delta, dn, dlen)
	}
	if err != nil {
		_ = tx.Rollback()
		return k.wrapErr("delete", err)
	}
	if err := tx.Commit(); err != nil {
		return k.wrapErr("delete", err)
	}
	return nil
}

// ResetKeywords empties every table.
func (k *sqlKeywords) ResetKeywords(ctx context.Context) error {
	if err := k.ready(ctx); err != nil {
		return err
	}
	tx, unlock, err := k.beginWrite(ctx)
	if err != nil {
		return k.wrapErr("reset", err)
	}
	defer unlock()
	for _, t := range []string{"{postings}", "{shares}", "{docs}", "{terms}"} {
		if _, err := tx.ExecContext(ctx, k.sql(`DELETE FROM `+t)); err != nil {
			_ = tx.Rollback()
			return k.wrapErr("reset", err)
		}
	}
	if _, err := tx.ExecContext(ctx, k.sql(`UPDATE {stats} SET n = 0, total_len = 0 WHERE id = 1`)); err != nil {
		_ = tx.Rollback()
		return k.wrapErr("reset", err)
	}
	if err := tx.Commit(); err != nil {
		return k.wrapErr("reset", err)
	}
	return nil
}

// KeywordCount returns the number of indexed memories.
func (k *sqlKeywords) KeywordCount(ctx context.Context) (int, error) {
	if err := k.ready(ctx); err != nil {
		return 0, err
	}
	var n int
	if err := k.db.QueryRowContext(ctx, k.sql(`SELECT n FROM {stats} WHERE id = 1`)).Scan(&n); err != nil {
		return 0, k.wrapErr("count", err)
	}
	return n, nil
}

// DocFreqs returns df per term plus the collection size and mean length.
func (k *sqlKeywords) DocFreqs(ctx context.Context, terms []int64) (map[int64]int, int, float64, error) {
	if err := k.ready(ctx); err != nil {
		return nil, 0, 0, err
	}
	var n, total int64
	df := make(map[int64]int, len(terms))
	if len(terms) > 0 && len(terms) <= kwChunk {
		// the usual query: stats and document frequencies in one statement
		a := sqlArgs{}
		in := placeholders(&a, toAnys(terms)...)
		rows, err := k.db.QueryContext(ctx, k.sql(`SELECT s.n, s.total_len, t.term, t.df FROM {stats} s
			LEFT JOIN {terms} t ON t.term IN (`+in+`) WHERE s.id = 1`), a...)
		if err != nil {
			return nil, 0, 0, k.wrapErr("df", err)
		}
		defer rows.Close()
		for rows.Next() {
			var t, d sql.NullInt64
			if err := rows.Scan(&n, &total, &t, &d); err != nil {
				return nil, 0, 0, k.wrapErr("df", err)
			}
			if t.Valid {
				df[t.Int64] = int(d.Int64)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, 0, 0, k.wrapErr("df", err)
		}
		avg := 0.0
		if n > 0 {
			avg = float64(total) / float64(n)
		}
		return df, int(n), avg, nil
	}
	if err := k.db.QueryRowContext(ctx, k.sql(`SELECT n, total_len FROM {stats} WHERE id = 1`)).Scan(&n, &total); err != nil {
		return nil, 0, 0, k.wrapErr("stats", err)
	}
	avg := 0.0
	if n > 0 {
		avg = float64(total) / float64(n)
	}
	for lo := 0; lo < len(terms); lo += kwChunk {
		a := sqlArgs{}
		in := placeholders(&a, toAnys(terms[lo:min(lo+kwChunk, len(terms))])...)
		rows, err := k.db.QueryContext(ctx, k.sql(`SELECT term, df FROM {terms} WHERE term IN (`+in+`)`), a...)
		if err != nil {
			return nil, 0, 0, k.wrapErr("df", err)
		}
		for rows.Next() {
			var t int64
			var d int
			if err := rows.Scan(&t, &d); err != nil {
				rows.Close()
				return nil, 0, 0, k.wrapErr("df", err)
			}
			df[t] = d
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, 0, k.wrapErr("df", err)
		}
	}
	return df, int(n), avg, nil
}

// IDF is BM25's inverse document frequency (the always-positive form).
func IDF(n, df int) float64 {
	return math.Log(1 + (float64(n)-float64(df)+0.5)/(float64(df)+0.5))
}

// SearchKeywords ranks by BM25 inside the database, filter included.
func (k *sqlKeywords) SearchKeywords(ctx context.Context, q KeywordQuery) ([]KeywordHit, error) {
	if q.Limit <= 0 || len(q.Filter.Any) == 0 || len(q.Terms) == 0 {
		return nil, nil
	}
	terms := make([]int64, 0, len(q.Terms))
	for t := range q.Terms {
		terms = append(terms, t)
	}
	slices.Sort(terms)
	df, n, avg, err := k.DocFreqs(ctx, terms)
	if err != nil {
		return nil, err
	}
	if n == 0 || avg == 0 {
		return nil, nil
	}
	a := sqlArgs{}
	var vals []string
	for _, t := range terms {
		if df[t] == 0 {
			continue
		}
		w := q.Terms[t] * IDF(n, df[t])
		if q.IDFPower > 0 && q.IDFPower != 1 {
			w = q.Terms[t] * math.Pow(IDF(n, df[t]), q.IDFPower)
		}
		vals = append(vals, "(CAST("+a.add(t)+" AS BIGINT), CAST("+a.add(w)+" AS DOUBLE PRECISION))")
	}
	if len(vals) == 0 {
		return nil, nil
	}
	k1 := a.add(q.K1)
	b := a.add(q.B)
	avgP := a.add(avg)
	dbl := func(p string) string { return "CAST(" + p + " AS DOUBLE PRECISION)" }
	// Candidates: memories holding one of the rarest query terms, taking
	// terms in order of rarity while their postings fit the budget (the
	// rarest always). Every query term then scores the candidates, so only
	// memories holding nothing but very common query words are left out.
	present := make([]int64, 0, len(terms))
	for _, t := range terms {
		if df[t] > 0 {
			present = append(present, t)
		}
	}
	slices.SortStableFunc(present, func(x, y int64) int { return df[x] - df[y] })
	rare, sum := present, 0
	if q.Budget > 0 {
		for i, t := range present {
			if i > 0 && sum+df[t] > q.Budget {
				rare = present[:i]
				break
			}
			sum += df[t]
		}
	}
	capped := q.Budget > 0 && len(rare) == 1 && df[rare[0]] > q.Budget
	cand := `SELECT DISTINCT p.doc_id AS id FROM {postings} p JOIN {docs} d ON d.id = p.doc_id
			WHERE p.term IN (` + placeholders(&a, toAnys(rare)...) + `) AND ` + kwFilterSQL(q.Filter, "d", &a)
	if capped {
		cand += ` LIMIT ` + strconv.Itoa(q.Budget)
	}
	query := `WITH q (term, w) AS (VALUES ` + strings.Join(vals, ", ") + `),
		cand AS (` + cand + `),
		s AS (
			SELECT d.id, d.prev1, d.prev2, d.next1, d.next2, SUM(q.w * p.tf * (` + dbl(k1) + ` + 1) /
				(p.tf + ` + dbl(k1) + ` * (1 - ` + dbl(b) + ` + ` + dbl(b) + ` * d.len / ` + dbl(avgP) + `))) AS score
			FROM cand CROSS JOIN q JOIN {postings} p ON p.term = q.term AND p.doc_id = cand.id JOIN {docs} d ON d.id = cand.id
			GROUP BY d.id, d.prev1, d.prev2, d.next1, d.next2)`
	if q.ContextNear == 0 && q.ContextFar == 0 {
		query += `
		SELECT s.id, s.score, s.score, ` + dbl("0") + `, ` + dbl("0") + ` FROM s ORDER BY s.score DESC, s.id LIMIT ` + strconv.Itoa(q.Limit)
	} else {
		zero := dbl("0")
		// every scored memory keeps its score and lends it to its
		// neighbours; one GROUP BY takes the best of each kind
		query += `,
		w AS (
			SELECT id, score AS kw, ` + zero + ` AS near, ` + zero + ` AS far FROM s
			UNION ALL SELECT prev1, ` + zero + `, score, ` + zero + ` FROM s WHERE prev1 IS NOT NULL
			UNION ALL SELECT next1, ` + zero + `, score, ` + zero + ` FROM s WHERE next1 IS NOT NULL
			UNION ALL SELECT prev2, ` + zero + `, ` + zero + `, score FROM s WHERE prev2 IS NOT NULL
			UNION ALL SELECT next2, ` + zero + `, ` + zero + `, score FROM s WHERE next2 IS NOT NULL),
		g AS (SELECT id, MAX(kw) AS kw, MAX(near) AS near, MAX(far) AS far FROM w GROUP BY id)
		SELECT g.id, g.kw + ` + dbl(a.add(q.ContextNear)) + ` * g.near + ` + dbl(a.add(q.ContextFar)) + ` * g.far AS total, g.kw, g.near, g.far
		FROM g JOIN {docs} d ON d.id = g.id
		WHERE ` + kwFilterSQL(q.Filter, "d", &a) + `
		ORDER BY total DESC, g.id LIMIT ` + strconv.Itoa(q.Limit)
	}
	rows, err := k.db.QueryContext(ctx, k.sql(query), a...)
	if err != nil {
		return nil, k.wrapErr("search", err)
	}
	defer rows.Close()
	var hits []KeywordHit
	for rows.Next() {
		var h KeywordHit
		if err := rows.Scan(&h.ID, &h.Score, &h.BM25, &h.Near, &h.Far); err != nil {
			return nil, k.wrapErr("search", err)
		}
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, k.wrapErr("search", err)
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].ID < hits[j].ID
	})
	return hits, nil
}

// kwFilterSQL is Filter.Matches as a condition on the docs table aliased
// alias (the same SQL on both engines).
func kwFilterSQL(f Filter, alias string, a *sqlArgs) string {
	var conds []string
	if f.OwnerID != "" {
		conds = append(conds, alias+".owner_id = "+a.add(f.OwnerID))
	}
	if !f.IncludeExpired {
		conds = append(conds, "("+alias+".expires_at IS NULL OR "+alias+".expires_at > "+a.add(f.Now.UnixMicro())+")")
	}
	for _, c := range f.Any {
		if c.Permission == "" && c.OwnerID == "" && c.SharedWithUser == "" && len(c.SharedWithGroups) == 0 {
			return joinAnd(conds)
		}
	}
	var alts []string
	for _, c := range f.Any {
		var parts []string
		if c.Permission != "" {
			parts = append(parts, alias+".permission = "+a.add(c.Permission))
		}
		if c.OwnerID != "" {
			parts = append(parts, alias+".owner_id = "+a.add(c.OwnerID))
		}
		var share []string
		if c.SharedWithUser != "" {
			share = append(share, "(s.kind = 'u' AND s.principal = "+a.add(c.SharedWithUser)+")")
		}
		if len(c.SharedWithGroups) > 0 {
			share = append(share, "(s.kind = 'g' AND s.principal IN ("+placeholders(a, toAnys(c.SharedWithGroups)...)+"))")
		}
		if len(share) > 0 {
			parts = append(parts, "EXISTS (SELECT 1 FROM {shares} s WHERE s.doc_id = "+alias+".id AND ("+strings.Join(share, " OR ")+"))")
		}
		alts = append(alts, "("+strings.Join(parts, " AND ")+")")
	}
	conds = append(conds, "("+strings.Join(alts, " OR ")+")")
	return joinAnd(conds)
}

// DocTerms returns the hashed terms with their frequencies.
func (k *sqlKeywords) DocTerms(ctx context.Context, ids []string) (map[string]map[int64]int, error) {
	out := map[string]map[int64]int{}
	if len(ids) == 0 {
		return out, nil
	}
	if err := k.ready(ctx); err != nil {
		return nil, err
	}
	a := sqlArgs{}
	in := placeholders(&a, toAnys(ids)...)
	rows, err := k.db.QueryContext(ctx, k.sql(`SELECT doc_id, term, tf FROM {postings} WHERE doc_id IN (`+in+`)`), a...)
	if err != nil {
		return nil, k.wrapErr("doc terms", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var t int64
		var tf int
		if err := rows.Scan(&id, &t, &tf); err != nil {
			return nil, k.wrapErr("doc terms", err)
		}
		if out[id] == nil {
			out[id] = map[int64]int{}
		}
		out[id][t] = tf
	}
	if err := rows.Err(); err != nil {
		return nil, k.wrapErr("doc terms", err)
	}
	return out, nil
}
