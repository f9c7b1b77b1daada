package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/fernet/fernet-go"
)

// KeyFile is where a generated secret key is kept inside --dir.
const KeyFile = "secret.key"

// Sealer encrypts the secrets this app stores (Picard tokens, the client
// secret) with Fernet.
type Sealer struct {
	keys []*fernet.Key
}

// LoadSealer uses CLIENTAPP_SECRET_KEY, or a key generated once into the
// data dir (0600) with a warning.
func LoadSealer(cfg Config) (*Sealer, error) {
	if cfg.SecretKey != "" {
		keys, err := fernet.DecodeKeys(strings.Split(cfg.SecretKey, ",")...)
		if err != nil {
			return nil, &ConfigError{"CLIENTAPP_SECRET_KEY", err.Error()}
		}
		return &Sealer{keys: keys}, nil
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(cfg.Dir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var k fernet.Key
		if err := k.Generate(); err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		b = []byte(k.Encode())
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		slog.Warn("CLIENTAPP_SECRET_KEY is not set: generated a key; back it up, losing it loses every stored Picard connection", "path", path)
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	keys, err := fernet.DecodeKeys(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Sealer{keys: keys}, nil
}

// Seal encrypts s.
func (s *Sealer) Seal(v string) (string, error) {
	tok, err := fernet.EncryptAndSign([]byte(v), s.keys[0])
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	return string(tok), nil
}

// Open decrypts what Seal produced.
func (s *Sealer) Open(v string) (string, error) {
	b := fernet.VerifyAndDecrypt([]byte(v), 100*365*24*time.Hour, s.keys)
	if b == nil {
		return "", errors.New("decrypt: wrong key or damaged value")
	}
	return string(b), nil
}

// passwordParams are argon2id's parameters (RFC 9106's second recommended
// set, lighter on memory: 19 MiB, 2 passes).
var passwordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// HashPassword returns an argon2id hash in PHC format.
func HashPassword(pw string) (string, error) {
	h, err := argon2id.CreateHash(pw, passwordParams)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// dummyHash is compared against when the account does not exist, so a
// wrong username costs as long as a wrong password.
var dummyHash, _ = HashPassword("no such account")

// CheckPassword reports whether pw matches hash.
func CheckPassword(pw, hash string) bool {
	if hash == "" {
		_, _ = argon2id.ComparePasswordAndHash(pw, dummyHash)
		return false
	}
	ok, err := argon2id.ComparePasswordAndHash(pw, hash)
	return err == nil && ok
}
