package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// DefaultHealthcheckURL is where `picard healthcheck` looks without --url:
// the server on this machine (or in this container) on its default port.
const DefaultHealthcheckURL = "http://" + DefaultListen

// NewHealthcheckCommand is `picard healthcheck [--url URL] [--timeout D]`:
// it asks a running Picard's /readyz and succeeds only when the database
// and the vector store both answer. Container probes (Docker HEALTHCHECK,
// compose, orchestrators) run it, so it needs no shell and no curl, and it
// reads no configuration: it never opens a database itself.
func NewHealthcheckCommand() *cobra.Command {
	var (
		base    string
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 only when a running Picard's /readyz says database and vector store are ready",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), timeout)
			defer cancel()
			status, err := CheckReady(ctx, base)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), "ready:", status)
			return nil
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	c.Flags().StringVar(&base, "url", DefaultHealthcheckURL, "base URL of the Picard server to check (/readyz is appended)")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return c
}

// CheckReady asks base/readyz and returns its component status ("database=ok
// vector_store=ok") when every component is ok, an error naming what is not
// otherwise.
func CheckReady(ctx context.Context, base string) (string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	u := strings.TrimRight(base, "/") + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("healthcheck: bad --url %q: %w", base, err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("healthcheck: %s unreachable: %w", u, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("healthcheck: read %s: %w", u, err)
	}
	var parts map[string]string
	if err := json.Unmarshal(body, &parts); err != nil || len(parts) == 0 {
		return "", fmt.Errorf("healthcheck: %s answered %d with %q, not a readiness report", u, res.StatusCode, truncate(body, 200))
	}
	keys := make([]string, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var summary, down []string
	for _, k := range keys {
		summary = append(summary, k+"="+parts[k])
		if parts[k] != "ok" {
			down = append(down, k)
		}
	}
	s := strings.Join(summary, " ")
	if res.StatusCode != http.StatusOK || len(down) > 0 {
		if len(down) == 0 {
			return s, fmt.Errorf("healthcheck: %s answered %d (%s)", u, res.StatusCode, s)
		}
		return s, errors.New("healthcheck: not ready: " + strings.Join(down, ", ") + " unavailable (" + s + ")")
	}
	return s, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
