package memories

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/internal/sqlitemem"
	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/platform/policy"
	"github.com/picard-mcp/picard/plugins/fernet"
	"github.com/picard-mcp/picard/vectorstore"
)

// Config wires the memory service.
type Config struct {
	Cipher   *fernet.Cipher
	Policies *policy.Registry
	Store    vectorstore.Store
	Embedder vectorstore.Embedder
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// PurgeCron is when expired memories are deleted; default daily 03:17.
	PurgeCron string
	// KeywordKey keys the hashes of the keyword index; when nil it is read
	// from (or generated into) keyword.key in the data dir.
	KeywordKey []byte
	// Search tunes keyword search; zero means vectorstore.DefaultHybridOptions.
	Search *vectorstore.HybridOptions
	// Dense is when query_memory also runs the dense (embedding) search:
	// "auto" (default: only with a semantic embedder, not the local hashing
	// one), "on" or "off".
	Dense string
}

// MustRegister is Register that panics on error.
func MustRegister(app core.App, cfg Config) *Service {
	s, err := Register(app, cfg)
	if err != nil {
		panic(err)
	}
	return s
}

// Register binds the outbox hooks, the reconciler (started with the server)
// and the daily purge of expired memories, and returns the service.
func Register(app core.App, cfg Config) (*Service, error) {
	if cfg.Cipher == nil || cfg.Policies == nil || cfg.Store == nil || cfg.Embedder == nil {
		return nil, errors.New("memories: Config needs Cipher, Policies, Store and Embedder")
	}
	sqlitemem.Retain() // no mmap/munmap per statement (see the package)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PurgeCron == "" {
		cfg.PurgeCron = "17 3 * * *"
	}
	s := &Service{
		app: app, cipher: cfg.Cipher, policies: cfg.Policies,
		store: cfg.Store, embedder: cfg.Embedder, now: cfg.Now,
		kick: make(chan struct{}, 1), texts: newTextCache(),
	}
	s.idx.linger = indexLinger
	s.bindTextCache(app)
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		s.pagesOnce.Do(func() {}) // no page cache from now on
		if s.pages != nil {
			s.pages.probe.close()
			s.pages.owners.close()
		}
		return e.Next()
	})
	s.bindGroupCache(app)
	if err := s.setupSearch(app, cfg); err != nil {
		return nil, err
	}

	markPending := func(e *core.RecordEvent) error {
		e.Record.Set("index_status", "pending")
		return e.Next()
	}
	app.OnRecordCreateExecute(pb_migrations.Memories).BindFunc(markPending)
	app.OnRecordUpdateExecute(pb_migrations.Memories).BindFunc(markPending)
	app.OnRecordDeleteExecute(pb_migrations.Memories).BindFunc(func(e *core.RecordEvent) error {
		if err := e.Next(); err != nil {
			return err
		}
		// same transaction as the delete: the tombstone exists iff the record is gone
		_, err := e.App.DB().NewQuery("INSERT INTO " + pb_migrations.Tombstones +
			" (id, memory_id, created, updated) VALUES ({:id}, {:mid}, strftime('%Y-%m-%d %H:%M:%fZ'), strftime('%Y-%m-%d %H:%M:%fZ')) ON CONFLICT (memory_id) DO NOTHING").
			Bind(dbx.Params{"id": core.GenerateDefaultRandomId(), "mid": e.Record.Id}).Execute()
		return err
	})
	kick := func(e *core.RecordEvent) error {
		if !isIndexedByCaller(e.Context) { // the service queues its own writes (indexLater)
			s.Kick()
		}
		return e.Next()
	}
	app.OnRecordAfterCreateSuccess(pb_migrations.Memories).BindFunc(kick)
	app.OnRecordAfterUpdateSuccess(pb_migrations.Memories).BindFunc(kick)
	app.OnRecordAfterDeleteSuccess(pb_migrations.Memories).BindFunc(kick)

	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		// the page cache's per-owner counter: its triggers go with the
		// table if the memories collection was ever dropped and made again
		if err := pb_migrations.EnsureOwnerVersionsChanged(app); err != nil {
			slog.Warn("memories: cannot create the per-owner change counter; get_memories pages are kept only while data.db is unchanged", "error", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		app.OnTerminate().BindFunc(func(te *core.TerminateEvent) error {
			cancel()
			<-done // the database must outlive the reconciler's last write
			s.closeIndexer()
			return te.Next()
		})
		ckDone := make(chan struct{})
		go func() {
			defer close(ckDone)
			s.runCheckpointer(ctx)
		}()
		go func() {
			defer close(done)
			defer func() { <-ckDone }()
			s.checkSpace(ctx)
			go s.WarmKeywords(ctx)
			if n, err := s.PurgeExpired(ctx); err != nil {
				slog.Warn("purge of expired memories failed", "error", err)
			} else if n > 0 {
				slog.Info("purged expired memories", "count", n)
			}
			s.RunReconciler(ctx)
		}()
		return e.Next()
	})
	app.Cron().MustAdd("picard_purge_expired", cfg.PurgeCron, func() {
		if n, err := s.PurgeExpired(context.Background()); err != nil {
			slog.Warn("purge of expired memories failed", "error", err)
		} else if n > 0 {
			slog.Info("purged expired memories", "count", n)
		}
	})
	return s, nil
}

// Policies returns the permission registry the service uses.
func (s *Service) Policies() *policy.Registry { return s.policies }
