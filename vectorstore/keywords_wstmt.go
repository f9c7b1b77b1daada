package vectorstore

// Prepared write statements of the SQLite keyword index.
//
// A write's multi-row statements used to be written out for the number of
// rows at hand, so SQLite parsed and compiled (and then freed) a new
// program of up to a few hundred rows for nearly every statement: about
// 60% of the keyword index's write CPU, more than running them
// (docs/performance.md, "Writes, round 4"). The write path now runs
// every multi-row statement as pieces of 64, 32, …, 2 or 1 rows, whose
// statements are prepared once, before the first write transaction, on the
// index's connection, and reused in every transaction. PostgreSQL (pgx
// caches prepared statements itself) keeps one statement per kwChunk
// rows.

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// rowStmt is a statement that writes the rows its text holds: head, then
// row once per row (each # is one of the row's parameters, in order),
// joined by ", ", then tail.
type rowStmt struct{ head, row, tail string }

// cols is the number of parameters of one row.
func (r rowStmt) cols() int { return strings.Count(r.row, "#") }

// text is r's statement for n rows, with placeholders $1, $2, … in order.
func (r rowStmt) text(n int) string {
	var b strings.Builder
	b.WriteString(r.head)
	p := 1
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		for j := 0; j < len(r.row); j++ {
			if r.row[j] != '#' {
				b.WriteByte(r.row[j])
				continue
			}
			b.WriteString("$" + strconv.Itoa(p))
			p++
		}
	}
	b.WriteString(r.tail)
	return b.String()
}

// maxPiece is the most rows of one prepared SQLite write statement; a
// statement runs as pieces of the powers of two up to it.
const maxPiece = 64

// pieceRows is how many of n rows (n > 0) the next statement writes.
func (k *sqlKeywords) pieceRows(n int) int {
	if !k.sqlite {
		return min(n, kwChunk)
	}
	p := maxPiece
	for p > n {
		p /= 2
	}
	return p
}

// The write path's multi-row statements.
var (
	insertDocsStmt = rowStmt{`INSERT{fail} INTO {docs} (k, id, owner_id, permission, expires_at, created_at, len) VALUES `,
		`(#, #, #, #, #, #, #)`, ``}
	insertPostingsStmt = rowStmt{`INSERT{fail} INTO {postings} (term, doc, tf) VALUES `, `(#, #, #)`, ``}
	insertSharesStmt   = rowStmt{`INSERT{fail} INTO {shares} (doc, kind, principal) VALUES `, `(#, #, #)`, ` ON CONFLICT DO NOTHING`}
	deletePostingsStmt = rowStmt{`DELETE FROM {postings} WHERE doc IN (`, `#`, `)`}
	deleteSharesStmt   = rowStmt{`DELETE FROM {shares} WHERE doc IN (`, `#`, `)`}
	deleteDocsStmt     = rowStmt{`DELETE FROM {docs} WHERE k IN (`, `#`, `)`}
	updateKeptStmt     = rowStmt{`WITH v (k, p, e, l) AS (VALUES `,
		`(CAST(# AS BIGINT), CAST(# AS TEXT), CAST(# AS BIGINT), CAST(# AS BIGINT))`,
		`) UPDATE{fail} {docs} AS d SET permission = v.p, expires_at = v.e, len = v.l FROM v WHERE d.k = v.k`}
	relinkStmt = rowStmt{`WITH v (k, p1, p2, n1, n2) AS (VALUES `,
		`(CAST(# AS BIGINT), CAST(# AS BIGINT), CAST(# AS BIGINT), CAST(# AS BIGINT), CAST(# AS BIGINT))`,
		`) UPDATE{fail} {docs} AS d SET prev1 = v.p1, prev2 = v.p2, next1 = v.n1, next2 = v.n2 FROM v WHERE d.k = v.k`}
	// SQLite: no upsert, whose DO UPDATE would open a statement journal
	// (see exec): the known terms are updated first, then the others
	// inserted (this writer is the only one).
	updateDFStmt  = rowStmt{`WITH v (t, d) AS (VALUES `, `(#, #)`, `) UPDATE{fail} {terms} SET df = df + v.d FROM v WHERE term = v.t`}
	insertDFStmt  = rowStmt{`WITH v (t, d) AS (VALUES `, `(#, #)`, `) INSERT{fail} INTO {terms} (term, df) SELECT t, d FROM v WHERE true ON CONFLICT DO NOTHING`}
	upsertDFStmt  = rowStmt{`INSERT INTO {terms} AS t (term, df) VALUES `, `(#, #)`, ` ON CONFLICT (term) DO UPDATE SET df = t.df + excluded.df`}
	dropTermsStmt = rowStmt{`DELETE FROM {terms} WHERE df <= 0 AND term IN (`, `#`, `)`}
)

// The write transaction's reads of the rows and terms it replaces.
var (
	oldDocsStmt     = rowStmt{`SELECT k, id, owner_id, created_at, len FROM {docs} WHERE id IN (`, `#`, `)`}
	oldPostingsStmt = rowStmt{`SELECT doc, term, tf FROM {postings} WHERE doc IN (`, `#`, `)`}
)

// sqliteRowStmts are the statements prepared for SQLite.
var sqliteRowStmts = []rowStmt{insertDocsStmt, insertPostingsStmt, insertSharesStmt,
	deletePostingsStmt, deleteSharesStmt, deleteDocsStmt, updateKeptStmt, relinkStmt,
	updateDFStmt, insertDFStmt, dropTermsStmt, oldDocsStmt, oldPostingsStmt}

// Single statements of the write path, prepared too.
const (
	allocKeysSQL   = `UPDATE{fail} {stats} SET next_k = next_k + $1 WHERE id = 1 RETURNING next_k`
	updateStatsSQL = `UPDATE{fail} {stats} SET n = n + $1, total_len = total_len + $2 WHERE id = 1`
	// SQLite: the stats row as a write leaves it, for the postings cache
	updateStatsReturningSQL = updateStatsSQL + ` RETURNING n, total_len, next_k`
	readStatsSQL            = `SELECT n, total_len, next_k FROM {stats} WHERE id = 1`
	// relinkWindow's reads: the 4 memories before an owner's first
	// changed place, and at most $4 from it on.
	//
	// {lim} is a unary plus on SQLite: SQLite reads the value bound to a
	// bare LIMIT parameter while it plans the statement, and then
	// re-prepares the statement whenever that parameter is bound again,
	// i.e. on every run; the plus hides the parameter from the planner.
	// Re-preparing windowFromSQL was 30% of a write's CPU in passes of 16
	// memories of 10 owners (BenchmarkKeywordIndexDocs/new/batch=16:
	// 343 -> 241 cpu-us/doc). memories' list query does the same.
	windowBeforeSQL = `SELECT k, prev1, prev2, next1, next2 FROM {docs}
		WHERE owner_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT 4`
	windowFromSQL = `SELECT k, created_at, id, prev1, prev2, next1, next2 FROM {docs}
		WHERE owner_id = $1 AND (created_at, id) >= ($2, $3) ORDER BY created_at, id LIMIT {lim}$4`
)

// timelineSQL is timeline's read: the $4 memories of owner $1 before
// (cmp "<=" or "<", order DESC) or after (">", ASC) the place ($2, $3)
// ({lim}: see windowFromSQL).
func timelineSQL(cmp, order string) string {
	return `SELECT k FROM {docs} WHERE owner_id = $1 AND (created_at, id) ` + cmp +
		` ($2, $3) ORDER BY created_at ` + order + `, id ` + order + ` LIMIT {lim}$4`
}

// wquery runs a read q (before wsql) of the write transaction tx.
func (k *sqlKeywords) wquery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	q = k.wsql(q)
	if st := k.wstmt(ctx, tx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

// wrow runs a one-row statement q (before wsql) of the write transaction
// tx, a read or a write with RETURNING.
func (k *sqlKeywords) wrow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	q = k.wsql(q)
	if k.onWrite != nil {
		k.onWrite(q)
	}
	if st := k.wstmt(ctx, tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// execRows runs stmts over rows, the parameters of its rows one after
// another (each statement's row has the same number of them): every
// statement in turn for the first piece of rows, then for the next.
func (k *sqlKeywords) execRows(ctx context.Context, tx *sql.Tx, rows []any, stmts ...rowStmt) error {
	cols := stmts[0].cols()
	for n := len(rows) / cols; n > 0; {
		p := k.pieceRows(n)
		for _, st := range stmts {
			if err := k.exec(ctx, tx, st.text(p), rows[:p*cols]...); err != nil {
				return err
			}
		}
		rows, n = rows[p*cols:], n-p
	}
	return nil
}

// prepareWrites prepares the SQLite write statements on the index's
// connection (once; a failure is retried at the next write). It runs
// before the write transaction: the pool has one connection, which the
// transaction holds.
func (k *sqlKeywords) prepareWrites(ctx context.Context) error {
	if !k.sqlite {
		return nil
	}
	k.wstmtMu.Lock()
	defer k.wstmtMu.Unlock()
	if k.wstmts != nil {
		return nil
	}
	m := map[string]*sql.Stmt{}
	prep := func(q string) error {
		q = k.wsql(q)
		if _, ok := m[q]; ok {
			return nil
		}
		st, err := k.db.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		m[q] = st
		return nil
	}
	var err error
	for _, st := range sqliteRowStmts {
		for n := maxPiece; n >= 1 && err == nil; n /= 2 {
			err = prep(st.text(n))
		}
	}
	for _, q := range []string{allocKeysSQL, updateStatsSQL, updateStatsReturningSQL, readStatsSQL, windowBeforeSQL, windowFromSQL,
		timelineSQL("<=", "DESC"), timelineSQL(">", "ASC")} {
		if err == nil {
			err = prep(q)
		}
	}
	if err != nil {
		for _, st := range m {
			st.Close()
		}
		return err
	}
	k.wstmts = m
	return nil
}

// wstmt is the prepared statement of q (after wsql) in tx, or nil.
func (k *sqlKeywords) wstmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if !k.sqlite {
		return nil
	}
	k.wstmtMu.Lock()
	st := k.wstmts[q]
	k.wstmtMu.Unlock()
	if st == nil {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

// closeWrites closes the prepared write statements.
func (k *sqlKeywords) closeWrites() {
	k.wstmtMu.Lock()
	defer k.wstmtMu.Unlock()
	for _, st := range k.wstmts {
		st.Close()
	}
	k.wstmts = nil
}
