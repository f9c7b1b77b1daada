package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

// signingKey is one ES256 key; kid is its record id.
type signingKey struct {
	kid     string
	private *ecdsa.PrivateKey
	active  bool
	// retireAfter, when set, is when every token the key signed has
	// expired: from then on it is neither published nor accepted
	retireAfter time.Time
}

func (k *signingKey) retired(now time.Time) bool {
	return !k.retireAfter.IsZero() && k.retireAfter.Before(now)
}

// JWK is a public key as published in the JWKS.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

type keyring struct {
	mu     sync.RWMutex
	loaded time.Time
	keys   map[string]*signingKey
	active *signingKey
}

// load reads the keys from the database, creating the first one.
func (s *Server) loadKeys(force bool) error {
	s.ring.mu.Lock()
	defer s.ring.mu.Unlock()
	if !force && s.ring.active != nil {
		return nil
	}
	if force && time.Since(s.ring.loaded) < 10*time.Second && s.ring.active != nil {
		return nil // unknown kids must not turn into a database hammer
	}
	recs, err := s.app.FindAllRecords(pb_migrations.OAuthKeys)
	if err != nil {
		return fmt.Errorf("oauth: load signing keys: %w", err)
	}
	if len(recs) == 0 {
		rec, err := s.createKey()
		if err != nil {
			return err
		}
		recs = append(recs, rec)
	}
	keys := map[string]*signingKey{}
	var active *signingKey
	now := s.now()
	for _, r := range recs {
		if ra := r.GetDateTime("retire_after"); !ra.IsZero() && ra.Time().Before(now) {
			continue // retired: its tokens have all expired
		}
		pemText, err := s.cipher.Decrypt(r.GetString("private_key"))
		if err != nil {
			return fmt.Errorf("oauth: signing key %s does not decrypt with the configured Fernet keys: %w", r.Id, err)
		}
		block, _ := pem.Decode([]byte(pemText))
		if block == nil {
			return fmt.Errorf("oauth: signing key %s is not PEM", r.Id)
		}
		priv, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return fmt.Errorf("oauth: signing key %s: %w", r.Id, err)
		}
		k := &signingKey{kid: r.Id, private: priv, active: r.GetBool("active")}
		if ra := r.GetDateTime("retire_after"); !ra.IsZero() {
			k.retireAfter = ra.Time()
		}
		keys[k.kid] = k
		if k.active {
			active = k
		}
	}
	if active == nil {
		return fmt.Errorf("oauth: no active signing key")
	}
	s.ring.keys, s.ring.active, s.ring.loaded = keys, active, time.Now()
	return nil
}

func (s *Server) createKey() (*core.Record, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("oauth: generate signing key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("oauth: encode signing key: %w", err)
	}
	enc, err := s.cipher.Encrypt(string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})))
	if err != nil {
		return nil, err
	}
	col, err := s.app.FindCachedCollectionByNameOrId(pb_migrations.OAuthKeys)
	if err != nil {
		return nil, fmt.Errorf("oauth: keys collection: %w", err)
	}
	rec := core.NewRecord(col)
	rec.Set("alg", "ES256")
	rec.Set("private_key", enc)
	rec.Set("active", true)
	if err := s.app.Save(rec); err != nil {
		return nil, fmt.Errorf("oauth: save signing key: %w", err)
	}
	rec.Set("public_jwk", publicJWK(&signingKey{kid: rec.Id, private: priv}))
	if err := s.app.Save(rec); err != nil {
		return nil, fmt.Errorf("oauth: save signing key: %w", err)
	}
	return rec, nil
}

func publicJWK(k *signingKey) JWK {
	b64 := func(n *big.Int) string {
		buf := make([]byte, 32)
		return base64.RawURLEncoding.EncodeToString(n.FillBytes(buf))
	}
	return JWK{Kty: "EC", Crv: "P-256", X: b64(k.private.X), Y: b64(k.private.Y), Kid: k.kid, Use: "sig", Alg: "ES256"}
}

// JWKS returns the published public keys.
func (s *Server) JWKS() ([]JWK, error) {
	if err := s.loadKeys(false); err != nil {
		return nil, err
	}
	s.ring.mu.RLock()
	defer s.ring.mu.RUnlock()
	now := s.now()
	out := []JWK{}
	for _, k := range s.ring.keys {
		if !k.retired(now) {
			out = append(out, publicJWK(k))
		}
	}
	// the active key first, then by kid: a stable order
	sort.Slice(out, func(i, j int) bool {
		ai, aj := out[i].Kid == s.ring.active.kid, out[j].Kid == s.ring.active.kid
		if ai != aj {
			return ai
		}
		return out[i].Kid < out[j].Kid
	})
	return out, nil
}

func (s *Server) activeKey() (*signingKey, error) {
	if err := s.loadKeys(false); err != nil {
		return nil, err
	}
	s.ring.mu.RLock()
	defer s.ring.mu.RUnlock()
	return s.ring.active, nil
}

func (s *Server) keyByID(kid string) *ecdsa.PublicKey {
	if err := s.loadKeys(false); err != nil {
		return nil
	}
	s.ring.mu.RLock()
	k := s.ring.keys[kid]
	s.ring.mu.RUnlock()
	if k == nil {
		// perhaps another replica rotated: reload once
		if err := s.loadKeys(true); err != nil {
			return nil
		}
		s.ring.mu.RLock()
		k = s.ring.keys[kid]
		s.ring.mu.RUnlock()
	}
	if k == nil || k.retired(s.now()) {
		return nil
	}
	return &k.private.PublicKey
}

// RotateKey makes a new active signing key; the old one stays published
// until every token it signed has expired.
func (s *Server) RotateKey() error {
	err := s.app.RunInTransaction(func(tx core.App) error {
		recs, err := tx.FindAllRecords(pb_migrations.OAuthKeys)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.GetBool("active") {
				r.Set("active", false)
				r.Set("retire_after", s.now().Add(s.cfg.AccessTTL+5*time.Minute))
				if err := tx.Save(r); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("oauth: rotate key: %w", err)
	}
	if _, err := s.createKey(); err != nil {
		return err
	}
	s.ring.mu.Lock()
	s.ring.active = nil
	s.ring.mu.Unlock()
	return s.loadKeys(false)
}
