package vectorstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/picard-mcp/picard/internal/sqlitemem"

	_ "modernc.org/sqlite" // the embedded keyword index
)

// sqliteConns is how many connections the SQLite keyword index uses. One:
// measured on 2 cores with 50 concurrent searches, modernc's SQLite
// answered 8.4 ms/op on one connection, 11.1 on two and 14.8 on four (the
// connections contend inside the pure-Go engine), and writes are
// serialised anyway.
var sqliteConns = 1

// KeywordCacheKiB is the page cache of each connection of the SQLite
// keyword index (and its checkpointer), in KiB: SQLite's default.
const KeywordCacheKiB = 2000

var keywordTables = []string{"docs", "postings", "shares", "terms", "stats", "version", "docs_owner_time", "postings_doc"}

// OpenSQLiteKeywords opens (or creates) a keyword index in the SQLite file
// at path (WAL mode, fully synced commits).
func OpenSQLiteKeywords(path string) (KeywordIndex, error) {
	k, err := openSQLiteKeywords(path)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func openSQLiteKeywords(path string) (*sqlKeywords, error) {
	sqlitemem.Retain() // no mmap/munmap per statement (see the package)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open keyword index: %w", err)
	}
	// create the file ourselves so it is 0600 from the start
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open keyword index: %w", err)
	}
	f.Close()
	q := url.Values{}
	// A 2 MB page cache (SQLite's default) and no mmap. Measured at 100k
	// memories (docs/performance.md, "Memory"): a larger cache (8 or 64
	// MiB) saved no CPU, and modernc's SQLite keeps a cache in up to
	// twice its size of RSS. The 1 GiB mmap this had made query_memory
	// 15-20% cheaper while it ranked in SQL, but it kept every page the
	// searches touched resident (~0.75 KB a memory: 75-110 MiB at 100k);
	// with the in-process postings cache ranking searches, the index is
	// read once at start and at each write, and the mapping only kept it
	// resident (289 vs 232 MiB peak, the same CPU per search). No
	// automatic checkpoints: a background connection runs them, see
	// startCheckpointer; statement journals of the multi-row writes in
	// memory, not in temporary files.
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(OFF)",
		fmt.Sprintf("cache_size(-%d)", KeywordCacheKiB), "mmap_size(0)", "wal_autocheckpoint(0)", "temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open keyword index: %w", err)
	}
	db.SetMaxOpenConns(sqliteConns)
	db.SetMaxIdleConns(sqliteConns)
	pairs := []string{}
	for _, t := range keywordTables {
		pairs = append(pairs, "{"+t+"}", "kw_"+t)
	}
	// {fail}: see writeTx; {lim}: see windowFromSQL
	pairs = append(pairs, "{wr}", " WITHOUT ROWID", "{incl}", "", "{fail}", " OR FAIL", "{lim}", "+")
	k := &sqlKeywords{db: db, sqlite: true, names: strings.NewReplacer(pairs...),
		wrapErr: func(op string, err error) error { return fmt.Errorf("keyword index %s: %w", op, err) },
		cache:   newPostingsCache(false)}
	k.ensure = func(ctx context.Context) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
		err = k.migrate(ctx, func(q string, args ...any) error {
			_, err := tx.ExecContext(ctx, q, args...)
			return err
		}, func(q string) (int, bool, error) {
			var v int
			err := tx.QueryRowContext(ctx, q).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				return 0, false, nil
			}
			return v, err == nil, err
		})
		if err != nil {
			return err
		}
		return tx.Commit()
	}
	if err := k.ready(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	if err := k.startCheckpointer(path); err != nil {
		db.Close()
		return nil, err
	}
	return k, nil
}

// Close closes the database.
func (k *sqlKeywords) Close() error {
	k.stmtMu.Lock()
	for key, st := range k.stmts {
		st.Close()
		delete(k.stmts, key)
	}
	k.stmtMu.Unlock()
	k.closeWrites()
	if k.stopCk != nil {
		k.stopCk()
	}
	return k.db.Close()
}

// newPGKeywords is the keyword index in the store's schema, sharing its
// connection pool; tables are created on first use.
func (s *PGStore) newPGKeywords() *sqlKeywords {
	db := stdlib.OpenDBFromPool(s.pool)
	pairs := []string{}
	for _, t := range keywordTables {
		name := pgx.Identifier{"kw_" + t}.Sanitize()
		if t != "docs_owner_time" && t != "postings_doc" {
			name = s.ident("kw_" + t)
		}
		pairs = append(pairs, "{"+t+"}", name)
	}
	pairs = append(pairs, "{wr}", "", "{incl}", " INCLUDE (tf)", "{fail}", "", "{lim}", "")
	k := &sqlKeywords{db: db, names: strings.NewReplacer(pairs...), wrapErr: pgError, cache: newPostingsCache(true)}
	k.cache.follower = newPGFollower(s)
	k.ensure = func(ctx context.Context) error {
		if err := s.ensure(ctx); err != nil {
			return err
		}
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('picard-vectorstore', 0))"); err != nil {
				return err
			}
			return k.migrate(ctx, func(q string, args ...any) error {
				_, err := tx.Exec(ctx, q, args...)
				return err
			}, func(q string) (int, bool, error) {
				var v int
				err := tx.QueryRow(ctx, q).Scan(&v)
				if errors.Is(err, pgx.ErrNoRows) {
					return 0, false, nil
				}
				return v, err == nil, err
			})
		})
	}
	return k
}
