package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/sqlite3store"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // SQLite without cgo
)

// DB is the client app's own database: SQLite in the data dir or
// PostgreSQL. Queries use $N placeholders, which both engines accept.
type DB struct {
	*sql.DB
	Postgres bool
	Path     string // SQLite file, "" on PostgreSQL
	pool     *pgxpool.Pool
	stop     chan struct{} // ends the expired-session cleanup
	stopped  chan struct{}
}

// SQLiteFile is the database file name inside --dir.
const SQLiteFile = "clientapp.db"

// OpenDB opens (and migrates) the database the config names.
func OpenDB(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.DatabaseURL != "" {
		pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, &ConfigError{"CLIENTAPP_DATABASE_URL", err.Error()}
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := pool.Ping(pctx); err != nil {
			pool.Close()
			return nil, &ConfigError{"CLIENTAPP_DATABASE_URL", "cannot connect: " + err.Error()}
		}
		db := &DB{DB: stdlib.OpenDBFromPool(pool), Postgres: true, pool: pool}
		if err := db.migrate(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(cfg.Dir, SQLiteFile)
	sdb, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(1) // one writer; requests are short
	db := &DB{DB: sdb, Path: path}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return db, nil
}

// Close stops the session cleanup and closes the database.
func (db *DB) Close() error {
	if db.stop != nil {
		close(db.stop)
		<-db.stopped
		db.stop = nil
	}
	err := db.DB.Close()
	if db.pool != nil {
		db.pool.Close()
	}
	return err
}

// SessionStore is the scs store on this database. The stores' own cleanup
// goroutines are off (pgxstore's races with StopCleanup); one goroutine
// here deletes expired sessions every 5 minutes until Close.
func (db *DB) SessionStore() scs.Store {
	expired := `DELETE FROM sessions WHERE expiry < julianday('now')`
	var store scs.Store = sqlite3store.NewWithCleanupInterval(db.DB, 0)
	if db.Postgres {
		expired = `DELETE FROM sessions WHERE expiry < current_timestamp`
		store = pgxstore.NewWithCleanupInterval(db.pool, 0)
	}
	if db.stop == nil {
		db.stop, db.stopped = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(db.stopped)
			tick := time.NewTicker(5 * time.Minute)
			defer tick.Stop()
			for {
				select {
				case <-db.stop:
					return
				case <-tick.C:
					if _, err := db.Exec(expired); err != nil {
						slog.Warn("deleting expired sessions", "error", err)
					}
				}
			}
		}()
	}
	return store
}

// migrations run in order on both engines; {{blob}} and {{expiry}} are the
// only per-engine words (the session stores expect those column types).
var migrations = []string{
	`CREATE TABLE users (
		id TEXT PRIMARY KEY,
		username TEXT NOT NULL,
		email TEXT NOT NULL,
		password_hash TEXT NOT NULL,
		created_at BIGINT NOT NULL
	)`,
	`CREATE UNIQUE INDEX users_username ON users (username)`,
	`CREATE UNIQUE INDEX users_email ON users (email)`,
	`CREATE TABLE connections (
		user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
		picard_user_id TEXT NOT NULL,
		method TEXT NOT NULL,
		access_token TEXT NOT NULL,
		refresh_token TEXT NOT NULL,
		expires_at BIGINT NOT NULL,
		needs_reconnect INTEGER NOT NULL DEFAULT 0,
		updated_at BIGINT NOT NULL
	)`,
	`CREATE TABLE settings (
		name TEXT PRIMARY KEY,
		value TEXT NOT NULL
	)`,
	`CREATE TABLE sessions (
		token TEXT PRIMARY KEY,
		data {{blob}} NOT NULL,
		expiry {{expiry}} NOT NULL
	)`,
	`CREATE INDEX sessions_expiry_idx ON sessions (expiry)`,
}

func (db *DB) dialect(stmt string) string {
	blob, expiry := "BLOB", "REAL"
	if db.Postgres {
		blob, expiry = "BYTEA", "TIMESTAMPTZ"
	}
	return strings.NewReplacer("{{blob}}", blob, "{{expiry}}", expiry).Replace(stmt)
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var done int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&done); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for i := done; i < len(migrations); i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, db.dialect(migrations[i])); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migrate %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, i+1); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migrate %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %d: %w", i+1, err)
		}
	}
	return nil
}
