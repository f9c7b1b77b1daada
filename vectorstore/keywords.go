package vectorstore

import (
	"cmp"
	"context"
	"database/sql"
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
	// ContextLenders bounds the lenders to the memories with the best
	// own scores (0: every scored memory lends).
	ContextLenders int
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
	noteMu   sync.Mutex // a write's commit and its note to the cache (commit)
	stopCk   func()     // SQLite: stops the background checkpointer (keywords_write.go)
	wrapErr  func(op string, err error) error
	// SQLite: prepared read statements by their text (see query); the
	// parser cost about a third of a search. PostgreSQL: pgx caches
	// prepared statements per connection itself.
	stmtMu sync.RWMutex
	stmts  map[string]*sql.Stmt
	// SQLite: the write path's prepared statements by their text
	// (keywords_wstmt.go)
	wstmtMu sync.Mutex
	wstmts  map[string]*sql.Stmt
	// cache ranks searches in Go once loaded (keywords_cache.go); nil or
	// noCache: every search runs in SQL
	cache   *postingsCache
	noCache bool
	// onWrite, when set (by tests), sees the text of every statement the
	// write path runs (keywords_write.go, exec)
	onWrite func(q string)
}

var placeholderRE = regexp.MustCompile(`\$(\d+)`)

func (k *sqlKeywords) sql(s string) string {
	s = k.names.Replace(s)
	if k.sqlite {
		s = placeholderRE.ReplaceAllString(s, "?$1")
	}
	return s
}

// maxStmts bounds the SQLite statement cache; statements differ by the
// number of query terms and the shape of the filter, so a few dozen are
// in use.
const maxStmts = 256

// query runs a read statement (written with {table} names and $n
// placeholders), through a cached prepared statement on SQLite.
func (k *sqlKeywords) query(ctx context.Context, text string, args ...any) (*sql.Rows, error) {
	if !k.sqlite {
		return k.db.QueryContext(ctx, k.sql(text), args...)
	}
	for {
		// the read lock is held while the statement starts, so eviction
		// (which closes statements) never closes one about to run;
		// running rows keep their statement open themselves
		k.stmtMu.RLock()
		if st, ok := k.stmts[text]; ok {
			rows, err := st.QueryContext(ctx, args...)
			k.stmtMu.RUnlock()
			return rows, err
		}
		k.stmtMu.RUnlock()
		st, err := k.db.PrepareContext(ctx, k.sql(text))
		if err != nil {
			return nil, err
		}
		k.stmtMu.Lock()
		if _, ok := k.stmts[text]; ok {
			st.Close()
		} else {
			if len(k.stmts) >= maxStmts {
				for key, old := range k.stmts {
					old.Close()
					delete(k.stmts, key)
				}
			}
			if k.stmts == nil {
				k.stmts = map[string]*sql.Stmt{}
			}
			k.stmts[text] = st
		}
		k.stmtMu.Unlock()
	}
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

// keywordVersion is the layout of the keyword tables; ensure drops and
// recreates tables of another version (empty, so the start-up check
// reindexes every memory).
//
// Version 2: memories have an integer key k (assigned from stats.next_k);
// postings, shares and neighbour links use it, postings are clustered by
// (term, doc) with tf inline (SQLite WITHOUT ROWID, PostgreSQL a covering
// primary key), so a search reads no text ids until its last step.
const keywordVersion = 2

// keywordDDL creates the tables; {x} are replaced by table names and
// {wr} / {incl} by the engine's clustering clauses.
var keywordDDL = []string{
	`CREATE TABLE IF NOT EXISTS {docs} (
		k          BIGINT NOT NULL PRIMARY KEY,
		id         TEXT NOT NULL UNIQUE,
		owner_id   TEXT NOT NULL,
		permission TEXT NOT NULL,
		expires_at BIGINT,
		created_at BIGINT NOT NULL,
		len        INTEGER NOT NULL,
		prev1      BIGINT,
		prev2      BIGINT,
		next1      BIGINT,
		next2      BIGINT){wr}`,
	`CREATE INDEX IF NOT EXISTS {docs_owner_time} ON {docs} (owner_id, created_at, id, k)`,
	`CREATE TABLE IF NOT EXISTS {postings} (
		term BIGINT NOT NULL,
		doc  BIGINT NOT NULL,
		tf   INTEGER NOT NULL,
		PRIMARY KEY (term, doc){incl}){wr}`,
	`CREATE INDEX IF NOT EXISTS {postings_doc} ON {postings} (doc, term, tf)`,
	`CREATE TABLE IF NOT EXISTS {shares} (
		doc       BIGINT NOT NULL,
		kind      TEXT NOT NULL,
		principal TEXT NOT NULL,
		PRIMARY KEY (doc, kind, principal)){wr}`,
	`CREATE TABLE IF NOT EXISTS {terms} (
		term BIGINT NOT NULL PRIMARY KEY,
		df   INTEGER NOT NULL){wr}`,
	`CREATE TABLE IF NOT EXISTS {stats} (
		id        INTEGER PRIMARY KEY,
		n         BIGINT NOT NULL,
		total_len BIGINT NOT NULL,
		next_k    BIGINT NOT NULL)`,
	`INSERT INTO {stats} (id, n, total_len, next_k) VALUES (1, 0, 0, 0) ON CONFLICT (id) DO NOTHING`,
}

// keywordDataTables are dropped when the layout version changes.
var keywordDataTables = []string{"{postings}", "{shares}", "{docs}", "{terms}", "{stats}"}

// migrate creates the tables, first dropping those of another layout
// version (or of the unversioned first layout).
func (k *sqlKeywords) migrate(ctx context.Context, exec func(q string, args ...any) error, queryInt func(q string) (int, bool, error)) error {
	if err := exec(k.sql(`CREATE TABLE IF NOT EXISTS {version} (v INTEGER NOT NULL)`)); err != nil {
		return err
	}
	v, ok, err := queryInt(k.sql(`SELECT v FROM {version}`))
	if err != nil {
		return err
	}
	if !ok || v != keywordVersion {
		for _, t := range keywordDataTables {
			if err := exec(k.sql(`DROP TABLE IF EXISTS ` + t)); err != nil {
				return err
			}
		}
		if err := exec(k.sql(`DELETE FROM {version}`)); err != nil {
			return err
		}
		if err := exec(k.sql(`INSERT INTO {version} (v) VALUES ($1)`), keywordVersion); err != nil {
			return err
		}
	}
	for _, q := range keywordDDL {
		if err := exec(k.sql(q)); err != nil {
			return err
		}
	}
	return nil
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

// docIDs lists docs' ids.
func docIDs(docs []KeywordDoc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out
}

func toAnys[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
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
		rows, err := k.query(ctx, `SELECT s.n, s.total_len, t.term, t.df FROM {stats} s
			LEFT JOIN {terms} t ON t.term IN (`+in+`) WHERE s.id = 1`, a...)
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
		rows, err := k.query(ctx, `SELECT term, df FROM {terms} WHERE term IN (`+in+`)`, a...)
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
	if k.cache != nil && !k.noCache {
		if err := k.ready(ctx); err != nil {
			return nil, err
		}
		if hits, ok, err := k.searchCached(ctx, q); ok || err != nil {
			return hits, err
		}
	}
	return k.searchSQL(ctx, q)
}

// searchSQL is SearchKeywords in the database.
func (k *sqlKeywords) searchSQL(ctx context.Context, q KeywordQuery) ([]KeywordHit, error) {
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
	weight := func(t int64) float64 {
		if q.IDFPower > 0 && q.IDFPower != 1 {
			return q.Terms[t] * math.Pow(IDF(n, df[t]), q.IDFPower)
		}
		return q.Terms[t] * IDF(n, df[t])
	}
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
	if len(present) == 0 {
		return nil, nil
	}
	slices.SortStableFunc(present, func(x, y int64) int {
		if df[x] != df[y] {
			return df[x] - df[y]
		}
		return cmp.Compare(x, y)
	})
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
	other := present[len(rare):]
	capped := q.Budget > 0 && len(rare) == 1 && df[rare[0]] > q.Budget
	hits, cut, err := k.runSearch(ctx, q, avg, weight, rare, other, capped, false)
	if err == nil && cut && len(hits) < q.Limit {
		// the quick form may have cut receivers that fail the filter
		// before enough passed it: the exact form decides
		hits, _, err = k.runSearch(ctx, q, avg, weight, rare, other, capped, true)
	}
	return hits, err
}

// overfetch × Limit totals are read again in the quick form of a search
// with context (see runSearch).
const overfetch = 3

// runSearch builds and runs the search statement. With context, the quick
// form (exact false) filters only the best overfetch × Limit totals'
// receivers that are not candidates themselves; the exact form filters
// them all. cut says whether the quick form left totals out.
func (k *sqlKeywords) runSearch(ctx context.Context, q KeywordQuery, avg float64, weight func(int64) float64,
	rare, other []int64, capped, exact bool) (hits []KeywordHit, cut bool, err error) {
	a := sqlArgs{}
	dbl := func(p string) string { return "CAST(" + p + " AS DOUBLE PRECISION)" }
	k1, b, avgP := dbl(a.add(q.K1)), dbl(a.add(q.B)), dbl(a.add(avg))
	// bm25 is one term's share of the score: weight × saturated tf
	bm25 := func(w, tf, dlen string) string {
		return w + " * " + tf + " * (" + k1 + " + 1) / (" + tf + " + " + k1 + " * (1 - " + b + " + " + b + " * " + dlen + " / " + avgP + "))"
	}
	values := func(ts []int64) string {
		rows := make([]string, len(ts))
		for i, t := range ts {
			rows[i] = "(CAST(" + a.add(t) + " AS BIGINT), CAST(" + a.add(weight(t)) + " AS DOUBLE PRECISION))"
		}
		return strings.Join(rows, ", ")
	}
	// cand: the candidates passing the filter, with their score from the
	// rare terms read off the same postings scan (one read of each docs
	// row, by integer key); a capped term keeps its newest postings
	var query, cand string
	if len(rare) == 1 {
		t := rare[0]
		cand = `SELECT d.k, d.id, d.prev1, d.prev2, d.next1, d.next2, d.len, ` + bm25(dbl(a.add(weight(t))), "p.tf", "d.len") + ` AS part
			FROM {postings} p JOIN {docs} d ON d.k = p.doc
			WHERE p.term = ` + a.add(t) + ` AND ` + kwFilterSQL(q.Filter, "d", &a)
		if capped {
			cand += ` ORDER BY p.doc DESC LIMIT ` + strconv.Itoa(q.Budget)
		}
		query = `WITH `
	} else {
		query = `WITH r (term, w) AS (VALUES ` + values(rare) + `), `
		cand = `SELECT d.k, d.id, d.prev1, d.prev2, d.next1, d.next2, d.len, SUM(` + bm25("r.w", "p.tf", "d.len") + `) AS part
			FROM r JOIN {postings} p ON p.term = r.term JOIN {docs} d ON d.k = p.doc
			WHERE ` + kwFilterSQL(q.Filter, "d", &a) + `
			GROUP BY d.k, d.id, d.prev1, d.prev2, d.next1, d.next2, d.len`
	}
	query += `cand AS (` + cand + `),`
	// s: the candidates' BM25, adding one postings lookup per other term
	if len(other) == 0 {
		query += `
		s AS (SELECT k, id, prev1, prev2, next1, next2, part AS score FROM cand)`
	} else {
		query += `
		o (term, w) AS (VALUES ` + values(other) + `),
		s AS (
			SELECT c.k, c.id, c.prev1, c.prev2, c.next1, c.next2, c.part + COALESCE((SELECT SUM(` + bm25("o.w", "p.tf", "c.len") + `)
				FROM o JOIN {postings} p ON p.term = o.term AND p.doc = c.k), 0) AS score
			FROM cand c)`
	}
	zero := dbl("0")
	if q.ContextNear == 0 && q.ContextFar == 0 {
		query += `
		SELECT s.id, s.score, s.score, ` + zero + `, ` + zero + `, 0 FROM s ORDER BY s.score DESC, s.id LIMIT ` + strconv.Itoa(q.Limit)
	} else {
		// every scored memory keeps its score; the best ContextLenders
		// lend theirs to their neighbours; one GROUP BY takes the best
		// of each kind; only receivers that are not candidates are read
		// again (and filtered)
		lenders := "s"
		if q.ContextLenders > 0 {
			query += `,
		top AS (SELECT k, score, prev1, prev2, next1, next2 FROM s ORDER BY score DESC, k LIMIT ` + strconv.Itoa(q.ContextLenders) + `)`
			lenders = "top"
		}
		query += `,
		w AS (
			SELECT k, id, score AS kw, ` + zero + ` AS near, ` + zero + ` AS far FROM s
			UNION ALL SELECT prev1, NULL, ` + zero + `, score, ` + zero + ` FROM ` + lenders + ` WHERE prev1 IS NOT NULL
			UNION ALL SELECT next1, NULL, ` + zero + `, score, ` + zero + ` FROM ` + lenders + ` WHERE next1 IS NOT NULL
			UNION ALL SELECT prev2, NULL, ` + zero + `, ` + zero + `, score FROM ` + lenders + ` WHERE prev2 IS NOT NULL
			UNION ALL SELECT next2, NULL, ` + zero + `, ` + zero + `, score FROM ` + lenders + ` WHERE next2 IS NOT NULL),
		g AS (SELECT k, MAX(id) AS id, MAX(kw) AS kw, MAX(near) AS near, MAX(far) AS far FROM w GROUP BY k),`
		cn, cf := dbl(a.add(q.ContextNear)), dbl(a.add(q.ContextFar))
		if !exact {
			// only the best few totals are read again: receivers that
			// are not candidates still have to pass the filter, and if
			// too many fail, the caller runs the exact form
			query += `
		best AS (SELECT k, id, kw, near, far, kw + ` + cn + ` * near + ` + cf + ` * far AS total FROM g
			ORDER BY total DESC, k LIMIT ` + strconv.Itoa(q.Limit*overfetch) + `),`
		} else {
			query += `
		best AS (SELECT k, id, kw, near, far, kw + ` + cn + ` * near + ` + cf + ` * far AS total FROM g),`
		}
		query += `
		res AS (
			SELECT id, total, kw, near, far FROM best WHERE id IS NOT NULL
			UNION ALL SELECT d.id, b.total, b.kw, b.near, b.far FROM best b JOIN {docs} d ON d.k = b.k
			WHERE b.id IS NULL AND ` + kwFilterSQL(q.Filter, "d", &a) + `)
		SELECT id, total, kw, near, far, (SELECT COUNT(*) FROM g) FROM res ORDER BY total DESC, id LIMIT ` + strconv.Itoa(q.Limit)
	}
	rows, err := k.query(ctx, query, a...)
	if err != nil {
		return nil, false, k.wrapErr("search", err)
	}
	defer rows.Close()
	withContext := q.ContextNear != 0 || q.ContextFar != 0
	// with no row at all the quick form cannot tell whether it cut
	cut = withContext && !exact
	for rows.Next() {
		var h KeywordHit
		var totals int
		if err := rows.Scan(&h.ID, &h.Score, &h.BM25, &h.Near, &h.Far, &totals); err != nil {
			return nil, false, k.wrapErr("search", err)
		}
		cut = withContext && !exact && totals > q.Limit*overfetch
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, false, k.wrapErr("search", err)
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].ID < hits[j].ID
	})
	return hits, cut, nil
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
			parts = append(parts, "EXISTS (SELECT 1 FROM {shares} s WHERE s.doc = "+alias+".k AND ("+strings.Join(share, " OR ")+"))")
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
	rows, err := k.query(ctx, `SELECT d.id, p.term, p.tf FROM {docs} d JOIN {postings} p ON p.doc = d.k WHERE d.id IN (`+in+`)`, a...)
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
