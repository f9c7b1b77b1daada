package memories

import (
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

// Bounds of the decrypted-text cache (past them the oldest-added entries
// go first): at most textCacheEntries memories,
// each of at most textCacheMaxChars bytes of text (≈ 20 MB at worst, a few
// MB for typical memories).
const (
	textCacheEntries  = 4096
	textCacheMaxChars = 2048
)

// textCache remembers the plaintext of recently read memories, so a
// listing does not re-open (HMAC-verify and AES-decrypt) the same Fernet
// tokens on every call.
//
// An entry is keyed by the memory id and holds the exact token it was
// decrypted from; it is used only when the row read now holds that same
// token. Any change of the text (update_memory, an import, a dashboard
// edit, a `keys rotate` re-encryption) writes a new token, so a stale
// plaintext can never be served, whichever process changed the row. The
// cache holds text only: the owner, permission and sharing of a memory are
// read from its row on every call and checked as before, so permission
// checks never depend on it. Updates and deletes through this process also
// drop the entry at once (forgetText), so a deleted memory's text does not
// linger in memory. Keys are fixed for the life of the process; a token
// under a key removed from PICARD_FERNET_KEYS cannot be served after the
// restart that removed it, since the cache does not survive a restart.
type textCache struct {
	c *lru.Cache[string, cachedText]
}

type cachedText struct{ token, text string }

func newTextCache() *textCache {
	c, _ := lru.New[string, cachedText](textCacheEntries) // only fails for size <= 0
	return &textCache{c: c}
}

// get returns the plaintext of token for memory id, if cached.
func (t *textCache) get(id, token string) (string, bool) {
	e, ok := t.c.Peek(id) // a read lock: recency is not tracked, eviction is oldest-added first
	if !ok || e.token != token {
		return "", false
	}
	return e.text, true
}

func (t *textCache) put(id, token, text string) {
	if len(text) > textCacheMaxChars {
		return
	}
	t.c.Add(id, cachedText{token: token, text: text})
}

func (t *textCache) forget(id string) { t.c.Remove(id) }

// bindTextCache drops a memory's cached text whenever its record is
// updated or deleted through this app (any path: tools, dashboard, import).
func (s *Service) bindTextCache(app core.App) {
	forget := func(e *core.RecordEvent) error {
		s.texts.forget(e.Record.Id)
		return e.Next()
	}
	app.OnRecordAfterUpdateSuccess(pb_migrations.Memories).BindFunc(forget)
	app.OnRecordAfterDeleteSuccess(pb_migrations.Memories).BindFunc(forget)
}

// decrypt opens a memory's token, through the cache.
func (s *Service) decrypt(id, token string) (string, error) {
	if s.texts != nil {
		if text, ok := s.texts.get(id, token); ok {
			return text, nil
		}
	}
	text, err := s.cipher.Decrypt(token)
	if err != nil {
		return "", internal("decrypt memory "+id, err)
	}
	if s.texts != nil {
		s.texts.put(id, token, text)
	}
	return text, nil
}
