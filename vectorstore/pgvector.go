package vectorstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgvector/pgvector-go"
	pgxvec "github.com/pgvector/pgvector-go/pgx"
)

// PGConfig configures PGStore.
type PGConfig struct {
	// DSN is a PostgreSQL connection string ("postgres://…"). Without a
	// connect_timeout in it, connecting gives up after 5 seconds.
	DSN string
	// Schema holds the store's tables (default "public"); it is created if
	// missing.
	Schema string
}

// PGStore is a Store on PostgreSQL with the pgvector extension (0.8 or
// later). Each Space gets its own table, named from the space and listed in
// the registry table vector_spaces, with an HNSW cosine index on the
// embedding and indexes on the filter columns.
//
// Connecting is lazy: OpenPG succeeds while the database is down, and the
// extension, schema and registry are created on first contact, retried by
// every call until they succeed. Calls made while the database cannot be
// reached fail with an error wrapping ErrUnavailable; the pool reconnects
// by itself when the database is back.
//
// Search is exact in spaces of up to pgExactMaxRows vectors. Larger spaces
// use the HNSW index with iterative scans, so filtered queries keep walking
// the graph until Limit rows pass the filter; when the index still comes up
// short it repeats the query exactly (without the ANN index), so a
// selective filter never loses rows that match. It is safe for concurrent
// use.
type PGStore struct {
	pool   *pgxpool.Pool
	schema string

	initSem chan struct{} // held while creating the schema
	ready   bool          // guarded by initSem

	mu     sync.RWMutex
	tables map[Space]*pgTable

	// maxScanTuples overrides hnsw.max_scan_tuples when positive (tests).
	maxScanTuples int
	// exactMaxRows overrides pgExactMaxRows when not zero; negative makes
	// every search use the index (tests).
	exactMaxRows int
	// exactSearches counts searches answered exactly from the start;
	// exactFallbacks those repeated exactly after the ANN index came up
	// short.
	exactSearches, exactFallbacks atomic.Int64

	kwOnce sync.Once
	kw     *sqlKeywords
}

var _ Store = (*PGStore)(nil)

// pgTable is one space's table.
type pgTable struct {
	ident string // quoted schema.table
	dist  string // SQL for the cosine distance between embedding and $1
}

const (
	registryTable = "vector_spaces"
	// hnswMaxDims is the most dimensions an HNSW index takes on vector;
	// up to halfvecMaxDims the index is built on a halfvec cast instead.
	hnswMaxDims    = 2000
	halfvecMaxDims = 4000
	pgMaxDims      = 16000
	// pgExactMaxRows: a space of up to this many vectors is searched
	// exactly (distance to every row that passes the filter, then sort)
	// instead of through its HNSW index. At 10,000 random 1,536-dim
	// vectors under viewer filters the exact scan costs PostgreSQL about
	// 1.5x the CPU of the index at ef_search 64 (16-19 ms against 12 ms on
	// a loaded 2-core machine), and the index found only 0.47 of the true
	// top 10; raising ef_search until it finds them (1000) costs more than
	// the exact scan. Real embeddings have more structure, so larger spaces
	// keep the index.
	pgExactMaxRows = 20000
)

// OpenPG returns a store on the database at cfg.DSN. A malformed DSN is an
// error; an unreachable database is not (see PGStore). OpenPG tries once to
// set up the schema so that configuration faults, such as a role that may
// not create the extension, fail at start.
func OpenPG(ctx context.Context, cfg PGConfig) (*PGStore, error) {
	if cfg.Schema == "" {
		cfg.Schema = "public"
	}
	if len(cfg.Schema) > 63 {
		return nil, fmt.Errorf("open pgvector store: schema name %q is longer than 63 bytes", cfg.Schema)
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("open pgvector store: parse dsn: %w", err)
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pc.AfterConnect = prepareConn
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pgvector store: %w", err)
	}
	s := &PGStore{
		pool:    pool,
		schema:  cfg.Schema,
		initSem: make(chan struct{}, 1),
		tables:  make(map[Space]*pgTable),
	}
	if err := s.ensure(ctx); err != nil {
		if !errors.Is(err, ErrUnavailable) {
			pool.Close()
			return nil, fmt.Errorf("open pgvector store: %w", err)
		}
		slog.Warn("vectorstore: postgres is unreachable; will retry on use", "err", err)
	}
	return s, nil
}

// prepareConn creates the vector extension if needed and registers its
// types on a new connection.
func prepareConn(ctx context.Context, conn *pgx.Conn) error {
	var have bool
	if err := conn.QueryRow(ctx, "SELECT to_regtype('vector') IS NOT NULL").Scan(&have); err != nil {
		return fmt.Errorf("look up vector type: %w", err)
	}
	if !have {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('picard-vectorstore', 0))"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS vector")
			return err
		})
		if err != nil {
			return fmt.Errorf("create extension vector: %w", err)
		}
	}
	if err := pgxvec.RegisterTypes(ctx, conn); err != nil {
		return fmt.Errorf("register pgvector types: %w", err)
	}
	return nil
}

func (s *PGStore) ident(name string) string { return pgx.Identifier{s.schema, name}.Sanitize() }

// ensure creates the schema and the registry once; until that succeeds
// every call retries it.
func (s *PGStore) ensure(ctx context.Context) error {
	select {
	case s.initSem <- struct{}{}:
	case <-ctx.Done():
		return pgError("set up schema", ctx.Err())
	}
	defer func() { <-s.initSem }()
	if s.ready {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('picard-vectorstore', 0))"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.ident(registryTable)+` (
			table_name text PRIMARY KEY,
			embedder   text NOT NULL,
			model      text NOT NULL,
			dims       integer NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now(),
			UNIQUE (embedder, model, dims))`)
		return err
	})
	if err != nil {
		return pgError("set up schema", err)
	}
	s.ready = true
	return nil
}

// spaceTableName derives a table name from a space: readable, at most 63
// bytes, and made unique by a hash of the exact space.
func spaceTableName(sp Space) string {
	h := fnv.New32a()
	h.Write([]byte(sp.Embedder + "\x00" + sp.Model + "\x00" + strconv.Itoa(sp.Dims)))
	return fmt.Sprintf("vec_%s_%s_%d_%08x", sanitizeName(sp.Embedder, 12), sanitizeName(sp.Model, 24), sp.Dims, h.Sum32())
}

func sanitizeName(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= n {
			break
		}
	}
	return b.String()
}

func (s *PGStore) newTable(name string, dims int) *pgTable {
	t := &pgTable{ident: s.ident(name), dist: "embedding <=> $1"}
	if dims > hnswMaxDims && dims <= halfvecMaxDims {
		t.dist = fmt.Sprintf("(embedding::halfvec(%d)) <=> ($1::vector(%[1]d)::halfvec(%[1]d))", dims)
	}
	return t
}

// table returns the table of sp, or nil when the space has none and create
// is false.
func (s *PGStore) table(ctx context.Context, sp Space, create bool) (*pgTable, error) {
	s.mu.RLock()
	t := s.tables[sp]
	s.mu.RUnlock()
	if t != nil {
		return t, nil
	}
	var name string
	err := s.pool.QueryRow(ctx, "SELECT table_name FROM "+s.ident(registryTable)+
		" WHERE embedder = $1 AND model = $2 AND dims = $3", sp.Embedder, sp.Model, sp.Dims).Scan(&name)
	switch {
	case err == nil:
	case errors.Is(err, pgx.ErrNoRows) && !create:
		return nil, nil
	case errors.Is(err, pgx.ErrNoRows):
		name = spaceTableName(sp)
		if err := s.createTable(ctx, sp, name); err != nil {
			return nil, err
		}
	default:
		return nil, pgError("look up space", err)
	}
	t = s.newTable(name, sp.Dims)
	s.mu.Lock()
	s.tables[sp] = t
	s.mu.Unlock()
	return t, nil
}

func (s *PGStore) createTable(ctx context.Context, sp Space, name string) error {
	if sp.Dims > pgMaxDims {
		return fmt.Errorf("pgvector create space %s: at most %d dims are supported", sp, pgMaxDims)
	}
	tbl := s.ident(name)
	idx := func(suffix string) string { return pgx.Identifier{name + suffix}.Sanitize() }
	ddl := []string{
		`CREATE TABLE IF NOT EXISTS ` + tbl + ` (
			id            text PRIMARY KEY,
			owner_id      text NOT NULL,
			permission    text NOT NULL,
			shared_users  text[] NOT NULL DEFAULT '{}',
			shared_groups text[] NOT NULL DEFAULT '{}',
			expires_at    timestamptz,
			created_at    timestamptz,
			embedding     vector(` + strconv.Itoa(sp.Dims) + `) NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS ` + idx("_owner") + ` ON ` + tbl + ` (owner_id)`,
		`CREATE INDEX IF NOT EXISTS ` + idx("_susers") + ` ON ` + tbl + ` USING gin (shared_users)`,
		`CREATE INDEX IF NOT EXISTS ` + idx("_sgroups") + ` ON ` + tbl + ` USING gin (shared_groups)`,
	}
	switch {
	case sp.Dims <= hnswMaxDims:
		ddl = append(ddl, `CREATE INDEX IF NOT EXISTS `+idx("_hnsw")+` ON `+tbl+
			` USING hnsw (embedding vector_cosine_ops)`)
	case sp.Dims <= halfvecMaxDims:
		ddl = append(ddl, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s USING hnsw ((embedding::halfvec(%d)) halfvec_cosine_ops)`,
			idx("_hnsw"), tbl, sp.Dims))
	default:
		slog.Warn("vectorstore: space too wide for an HNSW index; searches scan the table", "space", sp.String())
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('picard-vectorstore', 0))"); err != nil {
			return err
		}
		for _, q := range ddl {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, "INSERT INTO "+s.ident(registryTable)+
			" (table_name, embedder, model, dims) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
			name, sp.Embedder, sp.Model, sp.Dims)
		return err
	})
	if err != nil {
		return pgError("create space "+sp.String(), err)
	}
	return nil
}

// querier is what pgxpool.Pool and pgx.Tx share.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// allTables lists the (quoted) tables of every registered space.
func (s *PGStore) allTables(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.Query(ctx, "SELECT table_name FROM "+s.ident(registryTable)+" ORDER BY table_name")
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		names[i] = s.ident(n)
	}
	return names, nil
}

// Upsert inserts or replaces items in space, creating the space's table on
// first use. Vectors are normalised; times are kept to the microsecond.
func (s *PGStore) Upsert(ctx context.Context, space Space, items ...Item) error {
	if len(items) == 0 {
		return nil
	}
	vecs := make([]pgvector.Vector, len(items))
	for i, it := range items {
		if it.ID == "" {
			return errors.New("pgvector upsert: item with empty id")
		}
		v, err := normalized(space, it.Vector)
		if err != nil {
			return fmt.Errorf("pgvector upsert %q: %w", it.ID, err)
		}
		vecs[i] = pgvector.NewVector(v)
	}
	if err := s.ensure(ctx); err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	t, err := s.table(ctx, space, true)
	if err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	q := `INSERT INTO ` + t.ident + ` (id, owner_id, permission, shared_users, shared_groups, expires_at, created_at, embedding)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id) DO UPDATE SET owner_id = EXCLUDED.owner_id, permission = EXCLUDED.permission,
			shared_users = EXCLUDED.shared_users, shared_groups = EXCLUDED.shared_groups,
			expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at, embedding = EXCLUDED.embedding`
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		const chunk = 500
		for lo := 0; lo < len(items); lo += chunk {
			hi := min(lo+chunk, len(items))
			b := &pgx.Batch{}
			for i := lo; i < hi; i++ {
				m := items[i].Meta
				b.Queue(q, items[i].ID, m.OwnerID, m.Permission, nonNil(m.SharedUsers), nonNil(m.SharedGroups),
					nullTime(m.ExpiresAt), nullTime(m.CreatedAt), vecs[i])
			}
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return pgError("upsert", err)
	}
	return nil
}

// SetMeta replaces id's metadata in every space holding it.
func (s *PGStore) SetMeta(ctx context.Context, id string, meta Meta) error {
	if err := s.ensure(ctx); err != nil {
		return fmt.Errorf("set meta: %w", err)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tables, err := s.allTables(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			_, err := tx.Exec(ctx, `UPDATE `+t+` SET owner_id = $2, permission = $3, shared_users = $4,
				shared_groups = $5, expires_at = $6, created_at = $7 WHERE id = $1`,
				id, meta.OwnerID, meta.Permission, nonNil(meta.SharedUsers), nonNil(meta.SharedGroups),
				nullTime(meta.ExpiresAt), nullTime(meta.CreatedAt))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return pgError("set meta", err)
	}
	return nil
}

// Delete removes ids from every space.
func (s *PGStore) Delete(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.ensure(ctx); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tables, err := s.allTables(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := tx.Exec(ctx, "DELETE FROM "+t+" WHERE id = ANY($1)", ids); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return pgError("delete", err)
	}
	return nil
}

// Reset empties every space's table and the keyword index (the tables and
// the registry stay).
func (s *PGStore) Reset(ctx context.Context) error {
	if err := s.ensure(ctx); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	kw, _ := s.Keywords()
	if err := kw.ResetKeywords(ctx); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	tables, err := s.allTables(ctx, s.pool)
	if err != nil {
		return pgError("reset", err)
	}
	if len(tables) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", ")); err != nil {
		return pgError("reset", err)
	}
	return nil
}

// Count returns the number of vectors in space (0 for a space never
// written to).
func (s *PGStore) Count(ctx context.Context, space Space) (int, error) {
	if err := s.ensure(ctx); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	t, err := s.table(ctx, space, false)
	if err != nil || t == nil {
		return 0, err
	}
	var n int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM "+t.ident).Scan(&n); err != nil {
		return 0, pgError("count", err)
	}
	return n, nil
}

// Ping checks that the database is reachable and the schema is in place.
func (s *PGStore) Ping(ctx context.Context) error {
	if err := s.ensure(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		return pgError("ping", err)
	}
	return nil
}

// Keywords returns the keyword index kept in the store's schema (tables
// kw_*), on the same connection pool.
func (s *PGStore) Keywords() (KeywordIndex, error) {
	s.kwOnce.Do(func() { s.kw = s.newPGKeywords() })
	return s.kw, nil
}

// Close closes the connection pool.
func (s *PGStore) Close() error {
	if s.kw != nil {
		s.kw.cache.stopFollowing() // closes its listening connection
		s.kw.db.Close()
	}
	s.pool.Close()
	return nil
}

// Search returns the best q.Limit vectors of q.Space that pass q.Filter,
// best first, ties broken by id.
func (s *PGStore) Search(ctx context.Context, q Query) ([]Hit, error) {
	qv, err := normalized(q.Space, q.Vector)
	if err != nil {
		return nil, fmt.Errorf("pgvector search: %w", err)
	}
	if q.Limit <= 0 || len(q.Filter.Any) == 0 {
		return nil, nil
	}
	if err := s.ensure(ctx); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	t, err := s.table(ctx, q.Space, false)
	if err != nil || t == nil {
		return nil, err
	}
	args := sqlArgs{pgvector.NewVector(qv)}
	where := filterSQL(q.Filter, &args)
	limit := args.add(q.Limit)
	annQuery := "SELECT id, " + t.dist + " AS distance FROM " + t.ident +
		" WHERE " + where + " ORDER BY distance LIMIT " + limit
	// The subquery fence keeps the ORDER BY off the HNSW index; the
	// planner still uses the btree and GIN indexes for the filter.
	exactQuery := "SELECT id, distance FROM (SELECT id, " + t.dist + " AS distance FROM " + t.ident +
		" WHERE " + where + " OFFSET 0) AS c ORDER BY distance, id LIMIT " + limit
	// ef_search bounds the candidate list per step (1..1000 in pgvector).
	ef := min(max(2*q.Limit, 64), 1000)
	exactMax := int64(pgExactMaxRows)
	if s.exactMaxRows != 0 {
		exactMax = int64(s.exactMaxRows)
	}

	var hits []Hit
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// reltuples is the row count as of the last VACUUM, ANALYZE or
		// CREATE INDEX (-1 before any); autovacuum keeps it within a
		// fraction of the truth.
		var rows int64
		if err := tx.QueryRow(ctx, `SELECT set_config('hnsw.ef_search', $1, true),
				set_config('hnsw.iterative_scan', 'relaxed_order', true),
				(SELECT reltuples::bigint FROM pg_class WHERE oid = $2::regclass)`,
			strconv.Itoa(ef), t.ident).Scan(nil, nil, &rows); err != nil {
			return err
		}
		if rows < 0 {
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+t.ident).Scan(&rows); err != nil {
				return err
			}
		}
		var err error
		if rows <= exactMax {
			s.exactSearches.Add(1)
			hits, err = collectHits(ctx, tx, exactQuery, args)
			return err
		}
		if s.maxScanTuples > 0 {
			if _, err := tx.Exec(ctx, "SELECT set_config('hnsw.max_scan_tuples', $1, true)", strconv.Itoa(s.maxScanTuples)); err != nil {
				return err
			}
		}
		if hits, err = collectHits(ctx, tx, annQuery, args); err != nil {
			return err
		}
		if len(hits) >= q.Limit {
			return nil
		}
		// The ANN scan may stop early (hnsw.max_scan_tuples) or miss
		// unreachable nodes; fewer rows than asked means we must be exact.
		s.exactFallbacks.Add(1)
		hits, err = collectHits(ctx, tx, exactQuery, args)
		return err
	})
	if err != nil {
		return nil, pgError("search", err)
	}
	// relaxed_order may return rows slightly out of order.
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].ID < hits[j].ID
	})
	return hits, nil
}

func collectHits(ctx context.Context, tx pgx.Tx, query string, args []any) ([]Hit, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hit, error) {
		var h Hit
		var d float64
		err := r.Scan(&h.ID, &d)
		h.Score = 1 - d
		return h, err
	})
}

// sqlArgs collects query parameters; add returns the placeholder.
type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// filterSQL translates f into a WHERE condition with the same meaning as
// Filter.Matches; values only ever travel as parameters. f.Any must not be
// empty.
func filterSQL(f Filter, a *sqlArgs) string {
	var conds []string
	if f.OwnerID != "" {
		conds = append(conds, "owner_id = "+a.add(f.OwnerID))
	}
	if !f.IncludeExpired {
		conds = append(conds, "(expires_at IS NULL OR expires_at > "+a.add(f.Now)+")")
	}
	for _, c := range f.Any {
		if c.Permission == "" && c.OwnerID == "" && c.SharedWithUser == "" && len(c.SharedWithGroups) == 0 {
			// an unconstrained clause admits every memory.
			return joinAnd(conds)
		}
	}
	var alts []string
	for _, c := range f.Any {
		var parts []string
		if c.Permission != "" {
			parts = append(parts, "permission = "+a.add(c.Permission))
		}
		if c.OwnerID != "" {
			parts = append(parts, "owner_id = "+a.add(c.OwnerID))
		}
		var share []string
		if c.SharedWithUser != "" {
			share = append(share, "shared_users @> ARRAY["+a.add(c.SharedWithUser)+"::text]")
		}
		if len(c.SharedWithGroups) > 0 {
			share = append(share, "shared_groups && "+a.add(c.SharedWithGroups)+"::text[]")
		}
		if len(share) > 0 {
			parts = append(parts, "("+strings.Join(share, " OR ")+")")
		}
		alts = append(alts, "("+strings.Join(parts, " AND ")+")")
	}
	conds = append(conds, "("+strings.Join(alts, " OR ")+")")
	return joinAnd(conds)
}

func joinAnd(conds []string) string {
	if len(conds) == 0 {
		return "TRUE"
	}
	return strings.Join(conds, " AND ")
}

func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// pgError wraps err with the operation and, when the database could not be
// reached, with ErrUnavailable.
func pgError(op string, err error) error {
	if unreachable(err) {
		return fmt.Errorf("pgvector %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("pgvector %s: %w", op, err)
}

// unreachable reports whether err means the database could not be reached
// (as opposed to rejecting the statement or the caller giving up).
func unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutting down, starting up
			pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
