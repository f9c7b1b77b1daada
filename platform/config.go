// Package platform assembles the picard binary: configuration from the
// environment, plugin wiring, bootstrap and the extra CLI commands.
package platform

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/picard-mcp/picard/plugins/fernet"
	"github.com/picard-mcp/picard/vectorstore"
)

// DefaultListen is where `picard serve` listens without --http.
const DefaultListen = "127.0.0.1:8001"

// Config is everything Picard reads from the environment.
type Config struct {
	PublicURL      string // no trailing slash
	FernetKeys     []string
	VectorDSN      string
	Embedder       string // local | openai
	OpenAIKey      string
	OpenAIBaseURL  string
	EmbeddingModel string
	LLMModel       string
	AdminEmail     string
	AdminPassword  string
	// MCPStateless serves /mcp without sessions (several replicas).
	MCPStateless bool
	// AllowedOrigins are extra browser origins (and their hosts) /mcp accepts.
	AllowedOrigins []string
	// OAuthAllowPrivateCIMD lets Client ID Metadata Documents live on
	// private or loopback addresses and plain http (development only).
	OAuthAllowPrivateCIMD bool
	// AuditRetention is how long access log entries are kept (0: default).
	AuditRetention time.Duration
	// Search: PICARD_KEYWORD_KEY (base64, keys the keyword index hashes;
	// default keyword.key in the data dir), PICARD_SEARCH_DENSE
	// (auto|on|off), PICARD_SEARCH_CONTEXT (default true), PICARD_SEARCH_PRF
	// (default false); with dense search, PICARD_SEARCH_DENSE_WEIGHT and
	// PICARD_SEARCH_RRF_K (reciprocal rank fusion; 0 keeps the default).
	KeywordKey    []byte
	SearchDense   string
	SearchContext bool
	SearchPRF     bool
	DenseWeight   float64
	RRFK          float64
}

// ConfigError names the variable that is wrong.
type ConfigError struct {
	Var, Problem string
}

func (e *ConfigError) Error() string { return e.Var + ": " + e.Problem }

// LoadConfig reads and validates the environment. listen is the serve
// address, used to derive PICARD_PUBLIC_URL when it is unset.
func LoadConfig(getenv func(string) string, listen string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := Config{
		PublicURL:      strings.TrimRight(strings.TrimSpace(getenv("PICARD_PUBLIC_URL")), "/"),
		FernetKeys:     fernet.ParseKeys(getenv("PICARD_FERNET_KEYS")),
		VectorDSN:      strings.TrimSpace(getenv("PICARD_VECTOR_DSN")),
		Embedder:       strings.ToLower(strings.TrimSpace(getenv("PICARD_EMBEDDER"))),
		OpenAIKey:      strings.TrimSpace(getenv("OPENAI_API_KEY")),
		OpenAIBaseURL:  strings.TrimSpace(getenv("OPENAI_BASE_URL")),
		EmbeddingModel: strings.TrimSpace(getenv("PICARD_EMBEDDING_MODEL")),
		LLMModel:       strings.TrimSpace(getenv("PICARD_LLM_MODEL")),
		AdminEmail:     strings.TrimSpace(getenv("PICARD_ADMIN_EMAIL")),
		AdminPassword:  getenv("PICARD_ADMIN_PASSWORD"),
	}
	var err error
	if c.MCPStateless, err = boolVar(getenv, "PICARD_MCP_STATELESS"); err != nil {
		return c, err
	}
	if c.OAuthAllowPrivateCIMD, err = boolVar(getenv, "PICARD_OAUTH_ALLOW_PRIVATE_CIMD"); err != nil {
		return c, err
	}
	if c.AuditRetention, err = retentionVar(getenv, "PICARD_AUDIT_RETENTION"); err != nil {
		return c, err
	}
	if err := c.loadSearch(getenv); err != nil {
		return c, err
	}
	for _, o := range strings.Split(getenv("PICARD_ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o == "" {
			continue
		}
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return c, &ConfigError{"PICARD_ALLOWED_ORIGINS", fmt.Sprintf("%q is not an origin like https://app.example", o)}
		}
		c.AllowedOrigins = append(c.AllowedOrigins, o)
	}
	if c.PublicURL == "" {
		c.PublicURL = publicURLFromListen(listen)
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return c, &ConfigError{"PICARD_PUBLIC_URL", fmt.Sprintf("%q is not an absolute http(s) URL without query or fragment", c.PublicURL)}
	}
	if len(c.FernetKeys) > 0 {
		if _, err := fernet.NewCipher(c.FernetKeys...); err != nil {
			return c, &ConfigError{"PICARD_FERNET_KEYS", err.Error()}
		}
	}
	if c.VectorDSN != "" {
		u, err := url.Parse(c.VectorDSN)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return c, &ConfigError{"PICARD_VECTOR_DSN", "must be a postgres:// URL"}
		}
	}
	switch c.Embedder {
	case "":
		c.Embedder = "local"
	case "local":
	case "openai":
		if c.OpenAIKey == "" && c.OpenAIBaseURL == "" {
			return c, &ConfigError{"PICARD_EMBEDDER", "openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a compatible server)"}
		}
	default:
		return c, &ConfigError{"PICARD_EMBEDDER", fmt.Sprintf("%q is not one of local, openai", c.Embedder)}
	}
	if c.OpenAIBaseURL != "" {
		if u, err := url.Parse(c.OpenAIBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, &ConfigError{"OPENAI_BASE_URL", fmt.Sprintf("%q is not an http(s) URL", c.OpenAIBaseURL)}
		}
	}
	if c.EmbeddingModel == "" {
		c.EmbeddingModel = "text-embedding-3-small"
	}
	if c.LLMModel == "" && (c.OpenAIKey != "" || c.OpenAIBaseURL != "") {
		c.LLMModel = "gpt-4o-mini"
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		v := "PICARD_ADMIN_PASSWORD"
		if c.AdminEmail == "" {
			v = "PICARD_ADMIN_EMAIL"
		}
		return c, &ConfigError{v, "PICARD_ADMIN_EMAIL and PICARD_ADMIN_PASSWORD go together"}
	}
	if c.AdminEmail != "" && !strings.Contains(c.AdminEmail, "@") {
		return c, &ConfigError{"PICARD_ADMIN_EMAIL", "is not an email address"}
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < 10 {
		return c, &ConfigError{"PICARD_ADMIN_PASSWORD", "must be at least 10 characters"}
	}
	return c, nil
}

func (c *Config) loadSearch(getenv func(string) string) error {
	if k := strings.TrimSpace(getenv("PICARD_KEYWORD_KEY")); k != "" {
		key, err := vectorstore.ParseKeywordKey(k)
		if err != nil {
			return &ConfigError{"PICARD_KEYWORD_KEY", err.Error()}
		}
		c.KeywordKey = key
	}
	switch c.SearchDense = strings.ToLower(strings.TrimSpace(getenv("PICARD_SEARCH_DENSE"))); c.SearchDense {
	case "", "auto", "on", "off":
	default:
		return &ConfigError{"PICARD_SEARCH_DENSE", fmt.Sprintf("%q is not one of auto, on, off", c.SearchDense)}
	}
	var err error
	c.SearchContext = true
	if strings.TrimSpace(getenv("PICARD_SEARCH_CONTEXT")) != "" {
		if c.SearchContext, err = boolVar(getenv, "PICARD_SEARCH_CONTEXT"); err != nil {
			return err
		}
	}
	if c.SearchPRF, err = boolVar(getenv, "PICARD_SEARCH_PRF"); err != nil {
		return err
	}
	if c.DenseWeight, err = positiveVar(getenv, "PICARD_SEARCH_DENSE_WEIGHT"); err != nil {
		return err
	}
	c.RRFK, err = positiveVar(getenv, "PICARD_SEARCH_RRF_K")
	return err
}

// positiveVar reads a positive number; unset is 0.
func positiveVar(getenv func(string) string, name string) (float64, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) {
		return 0, &ConfigError{name, fmt.Sprintf("%q is not a positive number", v)}
	}
	return f, nil
}

func boolVar(getenv func(string) string, name string) (bool, error) {
	switch v := strings.ToLower(strings.TrimSpace(getenv(name))); v {
	case "", "false", "0", "no":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	default:
		return false, &ConfigError{name, fmt.Sprintf("%q is not true or false", v)}
	}
}

// MCPResource is the audience of access tokens: <public url>/mcp.
func (c Config) MCPResource() string { return c.PublicURL + "/mcp" }

func publicURLFromListen(listen string) string {
	if listen == "" {
		listen = DefaultListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + DefaultListen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
