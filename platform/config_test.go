package platform

import (
	"errors"
	"testing"
)

func TestLoadConfigNamesTheBadVariable(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string // variable named in the error; "" = valid
	}{
		{map[string]string{}, ""},
		{map[string]string{"PICARD_PUBLIC_URL": "ftp://x"}, "PICARD_PUBLIC_URL"},
		{map[string]string{"PICARD_PUBLIC_URL": "https://mem.example/?a=1"}, "PICARD_PUBLIC_URL"},
		{map[string]string{"PICARD_FERNET_KEYS": "short"}, "PICARD_FERNET_KEYS"},
		{map[string]string{"PICARD_VECTOR_DSN": "mysql://x"}, "PICARD_VECTOR_DSN"},
		{map[string]string{"PICARD_EMBEDDER": "bert"}, "PICARD_EMBEDDER"},
		{map[string]string{"PICARD_EMBEDDER": "openai"}, "PICARD_EMBEDDER"},
		{map[string]string{"PICARD_EMBEDDER": "openai", "OPENAI_API_KEY": "k"}, ""},
		{map[string]string{"OPENAI_BASE_URL": "localhost:11434"}, "OPENAI_BASE_URL"},
		{map[string]string{"PICARD_ADMIN_EMAIL": "a@b.c"}, "PICARD_ADMIN_PASSWORD"},
		{map[string]string{"PICARD_MCP_STATELESS": "maybe"}, "PICARD_MCP_STATELESS"},
		{map[string]string{"PICARD_OAUTH_ALLOW_PRIVATE_CIMD": "sure"}, "PICARD_OAUTH_ALLOW_PRIVATE_CIMD"},
		{map[string]string{"PICARD_ALLOWED_ORIGINS": "https://a.example/path"}, "PICARD_ALLOWED_ORIGINS"},
		{map[string]string{"PICARD_MCP_STATELESS": "true", "PICARD_ALLOWED_ORIGINS": "https://a.example, http://127.0.0.1:6274"}, ""},
		{map[string]string{"PICARD_ADMIN_PASSWORD": "0123456789"}, "PICARD_ADMIN_EMAIL"},
		{map[string]string{"PICARD_ADMIN_EMAIL": "a@b.c", "PICARD_ADMIN_PASSWORD": "short"}, "PICARD_ADMIN_PASSWORD"},
		{map[string]string{"PICARD_SEARCH_DENSE_WEIGHT": "-1"}, "PICARD_SEARCH_DENSE_WEIGHT"},
		{map[string]string{"PICARD_SEARCH_DENSE_WEIGHT": "heavy"}, "PICARD_SEARCH_DENSE_WEIGHT"},
		{map[string]string{"PICARD_SEARCH_RRF_K": "0"}, "PICARD_SEARCH_RRF_K"},
		{map[string]string{"PICARD_SEARCH_RRF_K": "NaN"}, "PICARD_SEARCH_RRF_K"},
		{map[string]string{"PICARD_SEARCH_DENSE_WEIGHT": "1", "PICARD_SEARCH_RRF_K": "60"}, ""},
	}
	for _, c := range cases {
		_, err := LoadConfig(func(k string) string { return c.env[k] }, DefaultListen)
		var ce *ConfigError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: unexpected error %v", c.env, err)
		case c.want != "" && (!errors.As(err, &ce) || ce.Var != c.want):
			t.Errorf("%v: want an error naming %s, got %v", c.env, c.want, err)
		}
	}
}

// TestFusionSettingsParsed: the fusion variables reach the config as
// numbers; unset leaves them 0 (the built-in defaults apply).
func TestFusionSettingsParsed(t *testing.T) {
	env := map[string]string{"PICARD_SEARCH_DENSE_WEIGHT": "0.75", "PICARD_SEARCH_RRF_K": " 10 "}
	c, err := LoadConfig(func(k string) string { return env[k] }, DefaultListen)
	if err != nil || c.DenseWeight != 0.75 || c.RRFK != 10 {
		t.Fatalf("got weight %v k %v, err %v", c.DenseWeight, c.RRFK, err)
	}
	c, err = LoadConfig(func(string) string { return "" }, DefaultListen)
	if err != nil || c.DenseWeight != 0 || c.RRFK != 0 {
		t.Fatalf("unset: weight %v k %v, err %v", c.DenseWeight, c.RRFK, err)
	}
}

func TestPublicURLDefaultsFromListen(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:8001": "http://127.0.0.1:8001",
		"0.0.0.0:9000":   "http://127.0.0.1:9000",
		"":               "http://127.0.0.1:8001",
	} {
		c, err := LoadConfig(func(string) string { return "" }, listen)
		if err != nil || c.PublicURL != want || c.MCPResource() != want+"/mcp" {
			t.Errorf("listen %q: %q %v", listen, c.PublicURL, err)
		}
	}
}
