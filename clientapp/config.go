package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/fernet/fernet-go"
)

// Config is the client app's configuration: flags plus environment.
type Config struct {
	Addr      string // listen address
	Dir       string // data directory (SQLite file, generated key)
	PicardURL string // CLIENTAPP_PICARD_URL: where this server reaches Picard
	// PicardPublicURL is Picard as browsers reach it (CLIENTAPP_PICARD_PUBLIC_URL,
	// default PicardURL): "Sign in with Picard" sends people to its /authorize.
	// Differs only when the server reaches Picard by an internal name
	// (docker compose's http://mcp_server:8001).
	PicardPublicURL string
	PublicURL       string // CLIENTAPP_PUBLIC_URL, this app's external base URL
	DatabaseURL     string // CLIENTAPP_DATABASE_URL (postgres://…); empty: SQLite in Dir
	SecretKey       string // CLIENTAPP_SECRET_KEY (Fernet); empty: generated into Dir
	ClientID        string // CLIENTAPP_CLIENT_ID, overrides what register stored
	ClientSecret    string // CLIENTAPP_CLIENT_SECRET
}

// ConfigError names the setting at fault.
type ConfigError struct {
	Var, Msg string
}

func (e *ConfigError) Error() string { return e.Var + ": " + e.Msg }

// LoadConfig reads the environment through getenv; addr and dir come from
// flags. Every bad value fails here, naming its variable.
func LoadConfig(getenv func(string) string, addr, dir string) (Config, error) {
	c := Config{
		Addr:            addr,
		Dir:             dir,
		PicardURL:       strings.TrimRight(getenv("CLIENTAPP_PICARD_URL"), "/"),
		PicardPublicURL: strings.TrimRight(getenv("CLIENTAPP_PICARD_PUBLIC_URL"), "/"),
		PublicURL:       strings.TrimRight(getenv("CLIENTAPP_PUBLIC_URL"), "/"),
		DatabaseURL:     getenv("CLIENTAPP_DATABASE_URL"),
		SecretKey:       strings.TrimSpace(getenv("CLIENTAPP_SECRET_KEY")),
		ClientID:        getenv("CLIENTAPP_CLIENT_ID"),
		ClientSecret:    getenv("CLIENTAPP_CLIENT_SECRET"),
	}
	if c.PicardURL == "" {
		c.PicardURL = "http://127.0.0.1:8001"
	}
	if err := checkBaseURL(c.PicardURL); err != nil {
		return c, &ConfigError{"CLIENTAPP_PICARD_URL", err.Error()}
	}
	if c.PicardPublicURL == "" {
		c.PicardPublicURL = c.PicardURL
	}
	if err := checkBaseURL(c.PicardPublicURL); err != nil {
		return c, &ConfigError{"CLIENTAPP_PICARD_PUBLIC_URL", err.Error()}
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + addr
	}
	if err := checkBaseURL(c.PublicURL); err != nil {
		return c, &ConfigError{"CLIENTAPP_PUBLIC_URL", err.Error()}
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return c, &ConfigError{"CLIENTAPP_DATABASE_URL", "must start with postgres:// (leave it unset for SQLite in --dir)"}
	}
	if c.SecretKey != "" {
		if _, err := fernet.DecodeKeys(c.SecretKey); err != nil {
			return c, &ConfigError{"CLIENTAPP_SECRET_KEY", "not a Fernet key (32 bytes, URL-safe base64): " + err.Error()}
		}
	}
	if (c.ClientID == "") != (c.ClientSecret == "") {
		v := "CLIENTAPP_CLIENT_SECRET"
		if c.ClientID == "" {
			v = "CLIENTAPP_CLIENT_ID"
		}
		return c, &ConfigError{v, "set CLIENTAPP_CLIENT_ID and CLIENTAPP_CLIENT_SECRET together"}
	}
	return c, nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want http(s)://host[:port], got %q", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("no query or fragment allowed in %q", s)
	}
	return nil
}

// Secure reports whether cookies must be Secure (public URL is https).
func (c Config) Secure() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// CallbackURL is the OAuth redirect URI registered at Picard.
func (c Config) CallbackURL() string { return c.PublicURL + "/oauth/callback" }
