package vectorstore

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode"

	"github.com/kljensen/snowball/english"
	"golang.org/x/text/unicode/norm"
)

// Tokens splits text into index terms: NFKC-normalised, lowercased, split
// on everything that is not a letter or a digit, English words stemmed
// (Snowball), possessive "'s" dropped. A run such as "ORD-2024-7781" or
// "a3f9.c2e1" also yields the whole run as one extra term, so a pasted code
// matches itself more strongly than its parts do. No stop-word list: common
// words weigh little through BM25's idf.
func Tokens(text string) []string {
	text = strings.ToLower(norm.NFKC.String(text))
	var out []string
	var word strings.Builder // current letter/digit run
	var run strings.Builder  // current code run (letters, digits, joiners)
	parts := 0               // letter/digit runs inside run
	flushWord := func() {
		if word.Len() == 0 {
			return
		}
		out = append(out, snowballStem(word.String()))
		word.Reset()
		parts++
	}
	flushRun := func() {
		flushWord()
		if parts > 1 {
			out = append(out, strings.Trim(run.String(), "-_./:@#"))
		}
		run.Reset()
		parts = 0
	}
	rs := []rune(text)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			word.WriteRune(r)
			run.WriteRune(r)
		case (r == '\'' || r == '’') && i+1 < len(rs) && rs[i+1] == 's' && (i+2 == len(rs) || !isWordRune(rs[i+2])):
			i++ // possessive: "caroline's" is "caroline"
			flushRun()
		case strings.ContainsRune("-_./:@#", r) && word.Len() > 0 && i+1 < len(rs) && isWordRune(rs[i+1]):
			flushWord()
			run.WriteRune(r)
		default:
			flushRun()
		}
	}
	flushRun()
	return out
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// snowballStem applies the English Snowball stemmer to plain ASCII words; codes,
// numbers and other scripts stay as they are.
func snowballStem(w string) string {
	if len(w) < 3 || len(w) > 40 {
		return w
	}
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return w
		}
	}
	return stems.stem(w)
}

// stems remembers the stems of the words seen last: the stemmer was a
// tenth of a memory write's CPU, and texts repeat their words.
var stems = stemCache{m: map[string]string{}}

// maxStems bounds the stem cache (it starts again empty when full).
const maxStems = 50_000

type stemCache struct {
	mu sync.RWMutex
	m  map[string]string
}

func (c *stemCache) stem(w string) string {
	c.mu.RLock()
	s, ok := c.m[w]
	c.mu.RUnlock()
	if ok {
		return s
	}
	s = english.Stem(w, true)
	c.mu.Lock()
	if len(c.m) >= maxStems {
		c.m = make(map[string]string, maxStems)
	}
	c.m[strings.Clone(w)] = s
	c.mu.Unlock()
	return s
}

// TermHasher turns terms into keyed hashes: the first 8 bytes of
// HMAC-SHA256(key, term) as a signed 64-bit integer. The keyword index only
// ever holds these, so it reveals no words without the key.
type TermHasher struct {
	pool sync.Pool
}

// KeywordKeyBytes is the length of a keyword index key.
const KeywordKeyBytes = 32

// NewTermHasher returns a hasher under key (at least 16 bytes).
func NewTermHasher(key []byte) (*TermHasher, error) {
	if len(key) < 16 {
		return nil, errors.New("keyword key must be at least 16 bytes")
	}
	k := append([]byte(nil), key...)
	return &TermHasher{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}, nil
}

// Hash returns the keyed hash of one term.
func (h *TermHasher) Hash(term string) int64 {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(term))
	var sum [sha256.Size]byte
	s := m.Sum(sum[:0])
	h.pool.Put(m)
	return int64(binary.BigEndian.Uint64(s[:8]))
}

// TermCounts tokenises text and returns each hashed term's frequency and
// the document length (number of tokens).
func (h *TermHasher) TermCounts(text string) (map[int64]int, int) {
	toks := Tokens(text)
	tf := make(map[int64]int, len(toks))
	for _, t := range toks {
		tf[h.Hash(t)]++
	}
	return tf, len(toks)
}

// ParseKeywordKey decodes a base64 (standard or URL alphabet) key.
func ParseKeywordKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) < 16 {
				return nil, errors.New("keyword key must decode to at least 16 bytes")
			}
			return b, nil
		}
	}
	return nil, errors.New("keyword key is not base64")
}

// LoadOrCreateKeywordKey reads the key file at path, creating it (0600,
// 32 random bytes, base64) with a warning when it does not exist.
func LoadOrCreateKeywordKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseKeywordKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("keyword key file %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read keyword key file: %w", err)
	}
	key := make([]byte, KeywordKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate keyword key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create keyword key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write keyword key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync keyword key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close keyword key file: %w", err)
	}
	slog.Warn("PICARD_KEYWORD_KEY is not set: generated the keyword index key; back it up (losing it only means `picard reindex`)", "path", path)
	return key, nil
}
