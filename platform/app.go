package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/cmd"
	"github.com/pocketbase/pocketbase/core"
	"github.com/spf13/cobra"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/platform/policy"
	"github.com/picard-mcp/picard/plugins/audit"
	"github.com/picard-mcp/picard/plugins/fernet"
	"github.com/picard-mcp/picard/plugins/mcpserver"
	"github.com/picard-mcp/picard/plugins/memories"
	"github.com/picard-mcp/picard/plugins/oauth"
	"github.com/picard-mcp/picard/plugins/persona"
	"github.com/picard-mcp/picard/plugins/statistical"
	"github.com/picard-mcp/picard/vectorstore"
)

// Components are Picard's parts, wired onto one PocketBase app.
type Components struct {
	Config   Config
	Cipher   *fernet.Cipher
	Policies *policy.Registry
	Vectors  vectorstore.Store
	Embedder vectorstore.Embedder
	Memories *memories.Service
	OAuth    *oauth.Server
	Tools    *mcpserver.Toolset
	Persona  *persona.Service
	Audit    *audit.Log
}

// Picard is the assembled application: PocketBase plus Components.
type Picard struct {
	*pocketbase.PocketBase
	*Components
}

// Options are what tests (and main) may override.
type Options struct {
	Args    []string // command line without the program name
	Getenv  func(string) string
	DataDir string // overrides --dir
	Now     func() time.Time
	// Vectors, when set, is used instead of opening the configured store.
	Vectors vectorstore.Store
}

// dataConns is the size of the SQLite read pool, open and idle alike.
// PocketBase's defaults (120 open, 15 idle) made every burst above 15
// concurrent reads close connections and open new ones (each open runs
// the pragmas: ~7% of get_memories' CPU under load). Writes have their
// own single connection.
const dataConns = 32

// New builds the app: configuration, plugins, commands. It does not start it.
func New(opts Options) (*Picard, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	cfg, err := LoadConfig(opts.Getenv, listenFromArgs(opts.Args))
	if err != nil {
		return nil, err
	}
	pb := pocketbase.NewWithConfig(pocketbase.Config{
		DefaultDataDir:   opts.DataDir,
		DataMaxOpenConns: dataConns,
		DataMaxIdleConns: dataConns,
		DBConnect:        dbConnect,
	})
	if opts.Vectors == nil && subcommand(opts.Args) == "keys" {
		opts.Vectors = noVectorStore{}
	}
	comps, err := Wire(pb, cfg, opts)
	if err != nil {
		return nil, err
	}
	p := &Picard{PocketBase: pb, Components: comps}
	p.addCommands()
	return p, nil
}

// Wire registers every Picard plugin on app and returns the parts. Tests
// call it on a PocketBase test app; New calls it on the real one.
func Wire(app core.App, cfg Config, opts Options) (*Components, error) {
	c := &Components{Config: cfg}
	dataDir := app.DataDir()
	keys := cfg.FernetKeys
	if len(keys) == 0 {
		k, err := fernet.LoadOrCreateKeyFile(filepath.Join(dataDir, "fernet.key"))
		if err != nil {
			return nil, &ConfigError{"PICARD_FERNET_KEYS", err.Error()}
		}
		keys = []string{k}
	}
	cipher, err := fernet.NewCipher(keys...)
	if err != nil {
		return nil, &ConfigError{"PICARD_FERNET_KEYS", err.Error()}
	}
	c.Cipher = cipher

	c.Policies = policy.NewRegistry()
	if err := policy.RegisterBuiltins(c.Policies); err != nil {
		return nil, err
	}
	if err := statistical.Register(c.Policies); err != nil {
		return nil, err
	}

	if c.Embedder, err = newEmbedder(cfg); err != nil {
		return nil, err
	}
	c.Vectors = opts.Vectors
	if c.Vectors == nil {
		if c.Vectors, err = openStore(cfg, dataDir); err != nil {
			return nil, err
		}
		app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
			err := e.Next()
			if cerr := c.Vectors.Close(); cerr != nil {
				slog.Warn("closing vector store", "error", cerr)
			}
			return err
		})
	}

	fernet.MustRegister(app, c.fernetConfig())
	search := vectorstore.DefaultHybridOptions()
	search.Context, search.PRF = cfg.SearchContext, cfg.SearchPRF
	if cfg.DenseWeight > 0 {
		search.DenseWeight = cfg.DenseWeight
	}
	if cfg.RRFK > 0 {
		search.RRFK = cfg.RRFK
	}
	c.Memories = memories.MustRegister(app, memories.Config{
		Cipher: cipher, Policies: c.Policies, Store: c.Vectors, Embedder: c.Embedder, Now: opts.Now,
		KeywordKey: cfg.KeywordKey, Search: &search, Dense: cfg.SearchDense,
	})
	c.OAuth = oauth.MustRegister(app, oauth.Config{
		Issuer: cfg.PublicURL, Resource: cfg.MCPResource(), Cipher: cipher, Now: opts.Now,
		AllowPrivateCIMD: cfg.OAuthAllowPrivateCIMD,
	})
	c.Persona, err = persona.New(app, persona.Config{
		Memories: c.Memories, APIKey: cfg.OpenAIKey, BaseURL: cfg.OpenAIBaseURL, Model: cfg.LLMModel,
	})
	if err != nil {
		return nil, err
	}
	c.Tools = mcpserver.MemoryTools(c.Memories)
	c.Tools.Add(mcpserver.PersonaTool(func(ctx context.Context, caller, target, q string) (any, error) {
		return c.Persona.Ask(ctx, caller, target, q)
	}))
	for _, t := range mcpserver.DirectoryTools(app, c.Policies, c.Memories) {
		c.Tools.Add(t)
	}
	c.Audit = audit.MustRegister(app, audit.Config{Retention: cfg.AuditRetention, Now: opts.Now})
	c.Tools.Add(mcpserver.AccessLogTool(c.Audit))
	var hosts []string
	for _, o := range cfg.AllowedOrigins {
		if u, err := url.Parse(o); err == nil {
			hosts = append(hosts, u.Host)
		}
	}
	mcpserver.MustRegister(app, mcpserver.Config{
		OAuth: c.OAuth, Tools: c.Tools, Memories: c.Memories, Persona: c.Persona,
		PublicURL: cfg.PublicURL, AllowedOrigins: cfg.AllowedOrigins, AllowedHosts: hosts,
		Stateless: cfg.MCPStateless, Access: c.Audit,
	})

	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		if err := c.ensureSuperuser(e.App); err != nil {
			return err
		}
		e.Router.GET("/readyz", c.handleReady)
		e.Router.Bind(bodyLimit())
		routeDebug(e)
		return e.Next()
	})
	return c, nil
}

func (c *Components) fernetConfig() fernet.Config {
	return fernet.Config{Cipher: c.Cipher, Collection: pb_migrations.Memories, Fields: []string{"text"}}
}

func newEmbedder(cfg Config) (vectorstore.Embedder, error) {
	if cfg.Embedder == "openai" {
		e, err := vectorstore.NewOpenAIEmbedder(vectorstore.OpenAIConfig{
			APIKey: cfg.OpenAIKey, BaseURL: cfg.OpenAIBaseURL, Model: cfg.EmbeddingModel,
		})
		if err != nil {
			return nil, &ConfigError{"PICARD_EMBEDDING_MODEL", err.Error()}
		}
		return e, nil
	}
	return vectorstore.NewLocalEmbedder(), nil
}

func openStore(cfg Config, dataDir string) (vectorstore.Store, error) {
	if cfg.VectorDSN != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := vectorstore.OpenPG(ctx, vectorstore.PGConfig{DSN: cfg.VectorDSN})
		if err != nil {
			return nil, &ConfigError{"PICARD_VECTOR_DSN", err.Error()}
		}
		return s, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s, err := vectorstore.OpenEmbedded(filepath.Join(dataDir, "vectors.db"))
	if err != nil {
		return nil, fmt.Errorf("open embedded vector store: %w", err)
	}
	return s, nil
}

// ensureSuperuser creates the configured superuser if absent.
func (c *Components) ensureSuperuser(app core.App) error {
	if c.Config.AdminEmail == "" {
		return nil
	}
	if _, err := app.FindAuthRecordByEmail(core.CollectionNameSuperusers, c.Config.AdminEmail); err == nil {
		return nil
	}
	col, err := app.FindCachedCollectionByNameOrId(core.CollectionNameSuperusers)
	if err != nil {
		return fmt.Errorf("superusers collection: %w", err)
	}
	su := core.NewRecord(col)
	su.SetEmail(c.Config.AdminEmail)
	su.SetPassword(c.Config.AdminPassword)
	if err := app.Save(su); err != nil {
		return fmt.Errorf("create superuser %s (PICARD_ADMIN_EMAIL): %w", c.Config.AdminEmail, err)
	}
	slog.Info("created superuser", "email", c.Config.AdminEmail)
	return nil
}

func (c *Components) handleReady(e *core.RequestEvent) error {
	ctx, cancel := context.WithTimeout(e.Request.Context(), 3*time.Second)
	defer cancel()
	status := map[string]string{"database": "ok", "vector_store": "ok"}
	code := http.StatusOK
	var one int
	if err := e.App.DB().NewQuery("SELECT 1").WithContext(ctx).Row(&one); err != nil {
		status["database"] = "unavailable"
		code = http.StatusServiceUnavailable
	}
	if err := c.Vectors.Ping(ctx); err != nil {
		status["vector_store"] = "unavailable"
		code = http.StatusServiceUnavailable
	}
	return e.JSON(code, status)
}

func (p *Picard) addCommands() {
	keys := &cobra.Command{Use: "keys", Short: "Manage encryption and signing keys"}
	keys.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Re-encrypt every memory under the first key of PICARD_FERNET_KEYS (resumable)",
		RunE: func(c *cobra.Command, _ []string) error {
			if err := p.RunAllMigrations(); err != nil {
				return err
			}
			// The server's own secrets first (the OAuth signing keys and
			// the CSRF key are Fernet tokens too): left under the old key,
			// the server would not start once that key is dropped.
			for _, secrets := range []fernet.Config{
				{Cipher: p.Cipher, Collection: pb_migrations.OAuthKeys, Fields: []string{"private_key"}},
				{Cipher: p.Cipher, Collection: pb_migrations.OAuthSecrets, Fields: []string{"value"}},
			} {
				if _, err := fernet.Rotate(c.Context(), p, secrets, nil); err != nil {
					return fmt.Errorf("rotation of %s stopped (run it again to resume): %w", secrets.Collection, err)
				}
			}
			st, err := fernet.Rotate(c.Context(), p, p.fernetConfig(),
				fernet.ProgressBar(c.ErrOrStderr(), "re-encrypting"))
			if err != nil {
				return fmt.Errorf("rotation stopped after %d memories (run it again to resume): %w", st.Rotated, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "rotated %d memories, %d already under the current key, %d rewritten meanwhile by the server\n", st.Rotated, st.AlreadyCurrent, st.Changed)
			return nil
		},
	})
	keys.AddCommand(&cobra.Command{
		Use:   "rotate-signing",
		Short: "Start signing access tokens with a new key (the old one stays published until its tokens expire)",
		RunE: func(c *cobra.Command, _ []string) error {
			if err := p.OAuth.RotateKey(); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), "new signing key active")
			return nil
		},
	})
	reindex := &cobra.Command{
		Use:   "reindex",
		Short: "Rebuild the vector store and the keyword index from the memories (resumable; stop the server first when using the embedded store)",
		RunE: func(c *cobra.Command, _ []string) error {
			if err := p.RunAllMigrations(); err != nil {
				return err
			}
			n, err := p.Memories.Reindex(c.Context(), fernet.ProgressBar(c.ErrOrStderr(), "reindexing"))
			if err != nil {
				return fmt.Errorf("reindex stopped after %d memories (run it again to resume, or start the server: pending memories are indexed automatically): %w", n, err)
			}
			if !p.Memories.Vectors() {
				fmt.Fprintf(c.OutOrStdout(), "indexed %d memories into the keyword index (dense search is off: no vectors; they are built at the first start with PICARD_SEARCH_DENSE=on)\n", n)
				return nil
			}
			fmt.Fprintf(c.OutOrStdout(), "indexed %d memories into %s\n", n, p.Embedder.Space())
			return nil
		},
	}
	p.RootCmd.AddCommand(keys, reindex, NewHealthcheckCommand())
	p.RootCmd.AddCommand(p.transferCommands()...)
	p.RootCmd.AddCommand(cmd.NewSuperuserCommand(p.PocketBase))
	serve := cmd.NewServeCommand(p.PocketBase, true)
	if f := serve.PersistentFlags().Lookup("http"); f != nil {
		_ = f.Value.Set(DefaultListen)
		f.DefValue = DefaultListen
	}
	p.RootCmd.AddCommand(serve)
}

// listenFromArgs finds --http in a serve command line.
func listenFromArgs(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--http="); ok {
			return v
		}
		if a == "--http" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return DefaultListen
}

// Run builds and executes the picard command line.
func Run(args []string) error {
	if len(args) > 0 && args[0] == "healthcheck" {
		// a probe must not load the configuration or open the databases
		// the server it checks is using: run it on its own
		hc := NewHealthcheckCommand()
		hc.SetArgs(args[1:])
		return hc.Execute()
	}
	p, err := New(Options{Args: args})
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return fmt.Errorf("configuration error: %s", ce.Error())
		}
		return err
	}
	// PocketBase's Execute drops the root command's error: keep the first
	// one a command returns so the process exits non-zero (cobra has
	// already printed it)
	var cmdErr error
	captureErrors(p.RootCmd, &cmdErr)
	if err := p.Execute(); err != nil {
		return err
	}
	if cmdErr != nil {
		return &CommandError{cmdErr}
	}
	return nil
}

// CommandError is a subcommand's failure that cobra already reported.
type CommandError struct{ Err error }

func (e *CommandError) Error() string { return e.Err.Error() }
func (e *CommandError) Unwrap() error { return e.Err }

func captureErrors(c *cobra.Command, dst *error) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			if err != nil && *dst == nil {
				*dst = err
			}
			return err
		}
	}
	for _, sub := range c.Commands() {
		captureErrors(sub, dst)
	}
}
