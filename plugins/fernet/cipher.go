// Package fernet keeps memory text encrypted at rest with Fernet tokens.
//
// Register binds model hooks so that, whichever path writes a record (the
// memory service, the PocketBase dashboard, a migration), the configured
// fields hold a Fernet token in the database. The first key encrypts; every
// key decrypts, which is what makes rotation possible (see Rotate).
package fernet

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	fernetgo "github.com/fernet/fernet-go"
)

// ErrDecrypt is returned when no configured key opens a token.
var ErrDecrypt = errors.New("fernet: no configured key decrypts this value")

// Cipher encrypts with the first key and decrypts with any of them.
type Cipher struct {
	keys []*fernetgo.Key
}

// NewCipher builds a Cipher from base64url Fernet keys; the first encrypts.
func NewCipher(keys ...string) (*Cipher, error) {
	if len(keys) == 0 {
		return nil, errors.New("fernet: at least one key is required")
	}
	parsed := make([]*fernetgo.Key, 0, len(keys))
	for i, k := range keys {
		key, err := fernetgo.DecodeKey(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("fernet: key %d is not a 32-byte base64 Fernet key: %w", i+1, err)
		}
		parsed = append(parsed, key)
	}
	return &Cipher{keys: parsed}, nil
}

// ParseKeys splits a comma-separated key list (PICARD_FERNET_KEYS).
func ParseKeys(s string) []string {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// GenerateKey returns a new random key in Fernet's encoding.
func GenerateKey() (string, error) {
	var k fernetgo.Key
	if _, err := rand.Read(k[:]); err != nil {
		return "", fmt.Errorf("fernet: generate key: %w", err)
	}
	return k.Encode(), nil
}

// LoadOrCreateKeyFile reads the key kept in path, creating it (mode 0600)
// on first use. It is the fallback when no keys are configured, so that a
// restart never brings a new random key.
func LoadOrCreateKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key := strings.TrimSpace(string(b))
		if _, err := fernetgo.DecodeKey(key); err != nil {
			return "", fmt.Errorf("fernet: key file %s is corrupt: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("fernet: read key file: %w", err)
	}
	key, err := GenerateKey()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("fernet: create data dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("fernet: create key file: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("fernet: write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("fernet: sync key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("fernet: close key file: %w", err)
	}
	slog.Warn("PICARD_FERNET_KEYS is not set: generated an encryption key; back it up, losing it loses every memory", "path", path)
	return key, nil
}

// Encrypt returns a Fernet token of plaintext under the first key.
func (c *Cipher) Encrypt(plaintext string) (string, error) {
	tok, err := fernetgo.EncryptAndSign([]byte(plaintext), c.keys[0])
	if err != nil {
		return "", fmt.Errorf("fernet: encrypt: %w", err)
	}
	return string(tok), nil
}

// Decrypt opens a token with any configured key.
func (c *Cipher) Decrypt(token string) (string, error) {
	msg := fernetgo.VerifyAndDecrypt([]byte(token), 0, c.keys)
	if msg == nil {
		return "", ErrDecrypt
	}
	return string(msg), nil
}

// IsToken reports whether s is a token that one of the keys opens.
func (c *Cipher) IsToken(s string) bool {
	return fernetgo.VerifyAndDecrypt([]byte(s), 0, c.keys) != nil
}

// IsCurrent reports whether s is a token under the first (encrypting) key.
func (c *Cipher) IsCurrent(s string) bool {
	return fernetgo.VerifyAndDecrypt([]byte(s), 0, c.keys[:1]) != nil
}
