// Command clientapp is Picard's web client: a separate server-rendered web
// application (chi, html/template, htmx as enhancement) with its own
// database, through which people sign up, connect to Picard and manage
// their memories. Every memory operation goes over MCP.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCmd(os.Getenv).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "clientapp:", err)
		os.Exit(1)
	}
}

func rootCmd(getenv func(string) string) *cobra.Command {
	var addr, dir string
	root := &cobra.Command{Use: "clientapp", Short: "Picard's web client", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVar(&dir, "dir", "./clientapp_data", "data directory (SQLite database, generated secret key)")

	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run the web client",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(getenv, addr, dir)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return Serve(ctx, cfg)
		},
	}
	serve.Flags().StringVar(&addr, "http", "127.0.0.1:8000", "listen address")

	var picardURL, adminEmail, adminPassword, publicURL string
	register := &cobra.Command{
		Use:   "register",
		Short: "Register this app at Picard as a confidential OAuth client and store its credentials",
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := func(k string) string {
				switch {
				case k == "CLIENTAPP_PICARD_URL" && picardURL != "":
					return picardURL
				case k == "CLIENTAPP_PUBLIC_URL" && publicURL != "":
					return publicURL
				}
				return getenv(k)
			}
			cfg, err := LoadConfig(env, "127.0.0.1:8000", dir)
			if err != nil {
				return err
			}
			if adminEmail == "" || adminPassword == "" {
				return errors.New("--admin-email and --admin-password are required")
			}
			return Register(cmd.Context(), cfg, adminEmail, adminPassword, cmd.OutOrStdout())
		},
	}
	register.Flags().StringVar(&picardURL, "picard-url", "", "Picard's base URL (default CLIENTAPP_PICARD_URL or http://127.0.0.1:8001)")
	register.Flags().StringVar(&adminEmail, "admin-email", "", "Picard superuser email")
	register.Flags().StringVar(&adminPassword, "admin-password", "", "Picard superuser password")
	register.Flags().StringVar(&publicURL, "public-url", "", "this app's external base URL (default CLIENTAPP_PUBLIC_URL or http://127.0.0.1:8000)")

	var checkURL string
	health := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the web client's /readyz answers ready",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Healthcheck(cmd.Context(), checkURL)
		},
	}
	health.Flags().StringVar(&checkURL, "url", "http://127.0.0.1:8000", "the web client's base URL")

	root.AddCommand(serve, register, health)
	return root
}

// Serve runs the web client until ctx ends.
func Serve(ctx context.Context, cfg Config) error {
	app, err := NewApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer app.Close()
	srv := &http.Server{
		Addr: cfg.Addr, Handler: app.Routes(),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("clientapp listening", "addr", cfg.Addr, "public_url", cfg.PublicURL, "picard", cfg.PicardURL, "postgres", app.db.Postgres)
	select {
	case err := <-errc:
		return fmt.Errorf("listen: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// Register registers the app at Picard and stores the credentials.
func Register(ctx context.Context, cfg Config, adminEmail, adminPassword string, out io.Writer) error {
	app, err := NewApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer app.Close()
	app.picard.Timeout = 30 * time.Second // a superuser sign-in hashes a password: slow on a busy host
	cr, err := app.picard.Register(ctx, adminEmail, adminPassword, "Picard web client")
	if err != nil {
		return err
	}
	if err := app.store.SetSetting(ctx, "client_id", cr.ID, false); err != nil {
		return err
	}
	if err := app.store.SetSetting(ctx, "client_secret", cr.Secret, true); err != nil {
		return err
	}
	fmt.Fprintf(out, "registered at %s as client %s (callback %s); the secret is stored encrypted\n", cfg.PicardURL, cr.ID, cfg.CallbackURL())
	return nil
}

// Healthcheck exits 0 only when /readyz says ready.
func Healthcheck(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: not ready: %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}
