package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

// Client ID Metadata Documents (MCP 2025-11-25): a client_id that is an
// https URL names a JSON document describing the client. Fetching it is a
// request to an address an attacker chooses, so it is fenced: public
// addresses only (checked on the dialed IP, so DNS rebinding cannot slip
// through), https only, no redirects, no proxies, 64 KiB, 5 s.
const (
	cimdMaxBytes = 64 << 10
	cimdTimeout  = 5 * time.Second
	cimdCacheTTL = 10 * time.Minute
	cimdMaxURL   = 2048
)

// cimdError is a client metadata document that cannot be used; its text
// is shown to the user.
type cimdError struct{ msg string }

func (e *cimdError) Error() string { return e.msg }

func cimdErrf(format string, args ...any) error { return &cimdError{fmt.Sprintf(format, args...)} }

// cimdDocument is the part of a client metadata document Picard reads.
type cimdDocument struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
}

type cimdResolver struct {
	allowPrivate bool
	http         *http.Client
	mu           sync.Mutex
	fetched      map[string]time.Time // client_id URL -> when its record was refreshed
}

func newCIMDResolver(allowPrivate bool) *cimdResolver {
	dialer := &net.Dialer{Timeout: cimdTimeout, Control: dialControl(allowPrivate)}
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would dial for us, past the address check
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    cimdTimeout,
		ResponseHeaderTimeout:  cimdTimeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConns:           10,
		IdleConnTimeout:        30 * time.Second,
	}
	return &cimdResolver{
		allowPrivate: allowPrivate,
		fetched:      map[string]time.Time{},
		http: &http.Client{
			Transport: transport,
			Timeout:   cimdTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// blockedPrefixes are addresses a metadata fetch must never reach.
var blockedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001:db8::/32",
		"2001::/32", "2002::/16", // Teredo and 6to4 embed IPv4 addresses, private ones included
		"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// publicAddr reports whether ip is a public unicast address.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// dialControl refuses connections to non-public addresses: it sees the IP
// actually dialed, after name resolution.
func dialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("oauth: cimd dial %q: %w", address, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !publicAddr(ip) {
			return fmt.Errorf("oauth: cimd: address %s is not public", host)
		}
		return nil
	}
}

// checkCIMDURL validates a client_id URL before anything is fetched.
func (r *cimdResolver) checkCIMDURL(raw string) (*url.URL, error) {
	if len(raw) > cimdMaxURL {
		return nil, cimdErrf("the client_id URL is too long")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, cimdErrf("the client_id is not a valid URL")
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !r.allowPrivate) {
		return nil, cimdErrf("the client_id URL must use https")
	}
	if u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, cimdErrf("the client_id URL must not contain user info or a fragment")
	}
	if u.Path == "" || u.Path == "/" {
		return nil, cimdErrf("the client_id URL must have a path")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return nil, cimdErrf("the client_id URL must not contain dot segments")
		}
	}
	if !r.allowPrivate {
		if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !publicAddr(ip) {
			return nil, cimdErrf("the client_id URL points to a private address")
		}
		if h := strings.ToLower(u.Hostname()); h == "localhost" || strings.HasSuffix(h, ".localhost") {
			return nil, cimdErrf("the client_id URL points to a private address")
		}
	}
	return u, nil
}

// fetch downloads and validates the document at clientID.
func (r *cimdResolver) fetch(ctx context.Context, clientID string) (*cimdDocument, error) {
	if _, err := r.checkCIMDURL(clientID); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cimdTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil {
		return nil, cimdErrf("the client_id is not a valid URL")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Picard-OAuth/1 (client metadata fetch)")
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, &cimdError{msg: "the document could not be fetched (only public https addresses are allowed)"}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, cimdErrf("fetching the document answered HTTP %d (redirects are not followed)", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, cimdErrf("the document is not JSON (Content-Type %q)", mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, cimdMaxBytes+1))
	if err != nil {
		return nil, cimdErrf("the document could not be read")
	}
	if len(body) > cimdMaxBytes {
		return nil, cimdErrf("the document is larger than 64 KiB")
	}
	var doc cimdDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, cimdErrf("the document is not a JSON object of client metadata")
	}
	if doc.ClientID != clientID {
		return nil, cimdErrf("the document's client_id does not equal its URL")
	}
	if doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != "none" {
		return nil, cimdErrf("token_endpoint_auth_method must be none")
	}
	m := ClientMetadata{
		RedirectURIs: doc.RedirectURIs, TokenEndpointAuthMethod: "none", GrantTypes: doc.GrantTypes,
		ResponseTypes: doc.ResponseTypes, ClientName: doc.ClientName, Scope: doc.Scope,
	}
	if code, desc := m.validate(); code != "" {
		return nil, cimdErrf("%s", desc)
	}
	doc.RedirectURIs, doc.ClientName, doc.Scope = m.RedirectURIs, m.ClientName, m.Scope
	return &doc, nil
}

// resolveCIMD returns the client record for a metadata-document client_id,
// fetching the document when it was not refreshed in the last 10 minutes.
func (s *Server) resolveCIMD(ctx context.Context, clientID string) (*core.Record, error) {
	r := s.cimd
	r.mu.Lock()
	at, ok := r.fetched[clientID]
	r.mu.Unlock()
	rec, findErr := s.app.FindFirstRecordByData(pb_migrations.OAuthClients, "metadata_url", clientID)
	if ok && findErr == nil && s.now().Sub(at) < cimdCacheTTL {
		return rec, nil
	}
	// each fetch is an outbound request made for an anonymous caller:
	// bounded per address so /authorize is no free fetching service
	if ip := requesterFrom(ctx); !s.cimdFetches.Take(ip, s.now()) {
		return nil, cimdErrf("too many client metadata documents fetched for your address; try again later")
	}
	doc, err := r.fetch(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if findErr != nil {
		col, err := s.app.FindCachedCollectionByNameOrId(pb_migrations.OAuthClients)
		if err != nil {
			return nil, fmt.Errorf("oauth: clients collection: %w", err)
		}
		rec = core.NewRecord(col)
		rec.Set("metadata_url", clientID)
		rec.Set("source", sourceCIMD)
		rec.Set("confidential", false)
		rec.Set("token_endpoint_auth_method", "none")
	}
	name := doc.ClientName
	if name == "" {
		u, _ := url.Parse(clientID)
		name = u.Hostname()
	}
	rec.Set("name", name)
	rec.Set("redirect_uris", doc.RedirectURIs)
	rec.Set("scopes", strings.Fields(doc.Scope))
	rec.Set("metadata_fetched", s.now())
	if err := s.app.Save(rec); err != nil {
		// a concurrent first fetch may have created it
		existing, ferr := s.app.FindFirstRecordByData(pb_migrations.OAuthClients, "metadata_url", clientID)
		if ferr != nil {
			return nil, errors.Join(fmt.Errorf("oauth: save cimd client: %w", err), ferr)
		}
		rec = existing
	}
	r.mu.Lock()
	if len(r.fetched) > 10_000 {
		r.fetched = map[string]time.Time{}
	}
	r.fetched[clientID] = s.now()
	r.mu.Unlock()
	return rec, nil
}

type requesterKey struct{}

// withRequester records the caller's address for the CIMD fetch limit.
func withRequester(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, requesterKey{}, ip)
}

func requesterFrom(ctx context.Context) string {
	ip, _ := ctx.Value(requesterKey{}).(string)
	return ip
}
