package oauth

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

// Where a client came from (oauth_clients.source).
const (
	sourceAdmin   = "admin"
	sourceDynamic = "dynamic"
	sourceCIMD    = "cimd"
)

var errUnknownClient = errors.New("unknown or disabled client")

// isURLClientID reports whether clientID names a client ID metadata
// document rather than a registered client.
func (s *Server) isURLClientID(clientID string) bool {
	return strings.HasPrefix(clientID, "https://") ||
		(s.cfg.AllowPrivateCIMD && strings.HasPrefix(clientID, "http://"))
}

// findClient returns the enabled client with this client_id: the UUID of a
// registered client, or the URL of a client ID metadata document. With
// fetch, a metadata document is fetched (or taken from the cache) and the
// client record created or refreshed from it; without, only a client seen
// before is found.
func (s *Server) findClient(ctx context.Context, clientID string, fetch bool) (*core.Record, error) {
	var (
		c   *core.Record
		err error
	)
	switch {
	case uuidRE.MatchString(clientID):
		c, err = s.app.FindRecordById(pb_migrations.OAuthClients, clientID)
	case s.isURLClientID(clientID) && fetch:
		c, err = s.resolveCIMD(ctx, clientID)
		if err != nil {
			return nil, err
		}
	case s.isURLClientID(clientID):
		c, err = s.app.FindFirstRecordByData(pb_migrations.OAuthClients, "metadata_url", clientID)
	default:
		return nil, errUnknownClient
	}
	if err != nil || c == nil || c.GetBool("disabled") {
		return nil, errUnknownClient
	}
	return c, nil
}

// publicClientID is the client_id as the client knows it.
func publicClientID(c *core.Record) string {
	if u := c.GetString("metadata_url"); u != "" {
		return u
	}
	return c.Id
}

func clientRedirectURIs(c *core.Record) []string {
	var uris []string
	_ = c.UnmarshalJSONField("redirect_uris", &uris)
	return uris
}

// redirectMatches compares a requested redirect URI with a registered one:
// exactly, character for character, except that for http on the loopback
// IP literals 127.0.0.1 and [::1] the port may differ (RFC 8252 §7.3).
// "localhost" gets no such allowance.
func redirectMatches(registered, given string) bool {
	if registered == given {
		return true
	}
	r, err := url.Parse(registered)
	if err != nil {
		return false
	}
	g, err := url.Parse(given)
	if err != nil {
		return false
	}
	if r.Scheme != "http" || g.Scheme != "http" || r.Hostname() != g.Hostname() {
		return false
	}
	if h := r.Hostname(); h != "127.0.0.1" && h != "::1" {
		return false
	}
	if !strings.HasPrefix(registered, "http://"+r.Host) || !strings.HasPrefix(given, "http://"+g.Host) {
		return false // scheme or host spelled differently (case, user info)
	}
	return strings.TrimPrefix(registered, "http://"+r.Host) == strings.TrimPrefix(given, "http://"+g.Host)
}

// matchRedirect reports whether given is one of client's redirect URIs.
func matchRedirect(c *core.Record, given string) bool {
	if ValidRedirectURI(given) != nil {
		return false
	}
	for _, r := range clientRedirectURIs(c) {
		if redirectMatches(r, given) {
			return true
		}
	}
	return false
}
