package oauth

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/picard-mcp/picard/internal/strictjson"
)

// FuzzRedirectMatches: matching never panics, is symmetric, and anything
// but an exact match is an http loopback IP literal differing in port only.
func FuzzRedirectMatches(f *testing.F) {
	for _, s := range [][2]string{
		{"http://127.0.0.1:8000/cb", "http://127.0.0.1:9999/cb"},
		{"http://[::1]/cb", "http://[::1]:1/cb"},
		{"http://localhost:1/cb", "http://localhost:2/cb"},
		{"https://app.example/cb", "https://app.example/cb?x=1"},
		{"http://127.0.0.1:1/cb", "http://user@127.0.0.1:1/cb"},
		{"http://127.0.0.1:1/cb", "HTTP://127.0.0.1:2/cb"},
		{"http://127.0.0.1:1/%zz", "http://127.0.0.1:2/%zz"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, registered, given string) {
		m := redirectMatches(registered, given)
		if m != redirectMatches(given, registered) {
			t.Fatalf("not symmetric: %q %q", registered, given)
		}
		if !m || registered == given {
			return
		}
		r, err1 := url.Parse(registered)
		g, err2 := url.Parse(given)
		if err1 != nil || err2 != nil {
			t.Fatalf("matched an unparsable URI: %q %q", registered, given)
		}
		ip, err := netip.ParseAddr(r.Hostname())
		if r.Scheme != "http" || err != nil || !ip.IsLoopback() || r.Hostname() != g.Hostname() || r.User != nil || g.User != nil {
			t.Fatalf("non-exact match outside http loopback: %q %q", registered, given)
		}
		if r.Path != g.Path || r.RawQuery != g.RawQuery || r.Fragment != g.Fragment {
			t.Fatalf("matched with a different path or query: %q %q", registered, given)
		}
	})
}

// FuzzClientMetadata: RFC 7591 metadata from arbitrary JSON is refused
// with an error code, or accepted with only valid redirect URIs.
func FuzzClientMetadata(f *testing.F) {
	for _, s := range []string{
		`{"redirect_uris":["http://127.0.0.1:3000/cb"],"client_name":"x"}`,
		`{"redirect_uris":["javascript:alert(1)"]}`,
		`{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`,
		`{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"],"response_types":["token"]}`,
		`{"redirect_uris":["https://a.example/#frag"],"scope":"admin"}`,
		`{"redirect_uris":[]}`, `{"redirect_uris":null}`, `[]`, `{"unknown":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var m ClientMetadata
		if err := strictjson.Decode(body, &m); err != nil {
			if fe := (*strictjson.FieldError)(nil); !errors.As(err, &fe) {
				t.Fatalf("untyped decoding error %T: %v", err, err)
			}
			return
		}
		code, desc := m.validate()
		if code != "" {
			if desc == "" || !strings.HasPrefix(code, "invalid_") {
				t.Fatalf("refusal without a typed code and description: %q %q", code, desc)
			}
			return
		}
		if len(m.RedirectURIs) == 0 {
			t.Fatal("accepted metadata without redirect URIs")
		}
		for _, u := range m.RedirectURIs {
			if ValidRedirectURI(u) != nil {
				t.Fatalf("accepted an invalid redirect URI %q", u)
			}
		}
	})
}

// FuzzCIMDURL: a client_id URL that passes the check is https, has a
// path, no user info, fragment or dot segments, and no private literal.
func FuzzCIMDURL(f *testing.F) {
	for _, s := range []string{
		"https://app.example/oauth/client.json", "https://127.0.0.1/c.json", "https://[::1]/c",
		"https://localhost/c", "https://a.example/../c", "http://a.example/c", "https://u@a.example/c",
		"https://a.example/c#f", "https://10.0.0.1/c", "https://[::ffff:10.0.0.1]/c", "https://a.example",
		"https://[2002:a00:1::]/c", "https://0x7f000001/c",
	} {
		f.Add(s)
	}
	r := newCIMDResolver(false)
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := r.checkCIMDURL(raw)
		if err != nil {
			if ce := (*cimdError)(nil); !errors.As(err, &ce) {
				t.Fatalf("untyped error %T", err)
			}
			return
		}
		if u.Scheme != "https" || u.User != nil || strings.Contains(raw, "#") || u.Path == "" || u.Path == "/" {
			t.Fatalf("accepted %q", raw)
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted dot segments in %q", raw)
			}
		}
		if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !publicAddr(ip) {
			t.Fatalf("accepted a private address %q", raw)
		}
	})
}
