package platform_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/picard-mcp/picard/internal/fixedembed"
	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/plugins/memories"
	"github.com/picard-mcp/picard/vectorstore"
)

type hit struct {
	ID      string   `json:"id"`
	Text    string   `json:"text"`
	Score   *float64 `json:"score"`
	Signals []string `json:"signals"`
}

func searchHits(t *testing.T, s *picardtest.Server, u picardtest.User, query string) []hit {
	t.Helper()
	r := s.Tool(u, "query_memory", map[string]any{"query": query, "limit": 10})
	if r.Status != http.StatusOK {
		t.Fatalf("query_memory %q: %d %s", query, r.Status, r.Body)
	}
	var res struct {
		Memories []hit `json:"memories"`
	}
	r.JSON(t, &res)
	return res.Memories
}

// TestSearchKeywordContextNoPlaintext: by default a search finds memories
// by their words (codes too) and lends score to the memories written just
// before and after a match, says which signal matched, and nothing in the
// data dir holds the words in plaintext.
func TestSearchKeywordContextNoPlaintext(t *testing.T) {
	backends(t, func(t *testing.T, store func(t *testing.T) vectorstore.Store) {
		vs := store(t)
		s := picardtest.Start(t, picardtest.Options{Vectors: vs})
		alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
		texts := []string{
			"Planning the summer holiday with Marguerite",
			"We booked the overnight ferry to Skopelos, ticket QX-4471-ZB",
			"Packed snorkels and sunscreen",
			"Unrelated: the dentist moved my appointment",
			"Unrelated: renewed the library card",
		}
		var ids []string
		for _, tx := range texts {
			ids = append(ids, submit(t, s, alice, map[string]any{"text": tx}).ID)
		}
		got := searchHits(t, s, alice, "qx-4471-zb")
		if len(got) == 0 || got[0].ID != ids[1] || !slices.Equal(got[0].Signals, []string{"keyword"}) || got[0].Score == nil || *got[0].Score != 1 {
			t.Fatalf("the code finds its memory first, by keyword, score 1: %+v", got)
		}
		sig := map[string][]string{}
		for _, h := range got {
			sig[h.ID] = h.Signals
		}
		for _, i := range []int{0, 2} {
			if !slices.Equal(sig[ids[i]], []string{"context"}) {
				t.Errorf("memory written next to the match should come by context: %q -> %v", texts[i], sig[ids[i]])
			}
		}
		if _, ok := sig[ids[4]]; ok {
			t.Errorf("a memory three away must not be lent score: %+v", got)
		}
		if vs != nil {
			return // pgvector keeps the index in PostgreSQL; TestKeywordsNoPlaintextPG checks its tables
		}
		// no plaintext anywhere in the data dir (records are Fernet
		// tokens, the keyword index holds keyed hashes)
		if _, err := s.App.DB().NewQuery("PRAGMA wal_checkpoint(TRUNCATE)").Execute(); err != nil {
			t.Fatal(err)
		}
		words := []string{"Marguerite", "Skopelos", "snorkels", "QX-4471-ZB", "dentist"}
		err := filepath.WalkDir(s.App.DataDir(), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, w := range words {
				for _, form := range []string{w, strings.ToLower(w), vectorstore.Tokens(w)[0]} {
					if len(form) >= 5 && bytes.Contains(b, []byte(form)) {
						t.Errorf("%s holds %q in plaintext", path, form)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// topics embeds texts about boats one way, cakes another and everything
// else a third, so dense search finds "ship" for "boat".
type topics struct{}

func (topics) Len() int { return 1536 } // text-embedding-3-small's length

func (topics) Embed(text string) ([]float32, bool) {
	v := make([]float32, 1536)
	l := strings.ToLower(text)
	switch {
	case strings.Contains(l, "boat") || strings.Contains(l, "ship") || strings.Contains(l, "vessel"):
		v[0] = 1
	case strings.Contains(l, "cake"):
		v[1] = 1
	default:
		v[2] = 1
	}
	return v, true
}

// fixedEmbeddings serves topics through the OpenAI embeddings API on
// loopback (the real API cannot be reached from tests) and returns its
// base URL.
func fixedEmbeddings(t *testing.T) string {
	srv, err := fixedembed.Serve(topics{}, "fixed")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv.URL
}

// TestSearchFusesDense: with a semantic embedder, keyword and dense hits
// are fused by reciprocal rank and each carries the signals that found it.
func TestSearchFusesDense(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{Env: map[string]string{
		"PICARD_EMBEDDER": "openai", "OPENAI_BASE_URL": fixedEmbeddings(t), "OPENAI_API_KEY": "test-key",
		"PICARD_SEARCH_CONTEXT": "false",
	}})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	ship := submit(t, s, alice, map[string]any{"text": "The old ship left the harbour at dawn"}).ID
	boat := submit(t, s, alice, map[string]any{"text": "Boat trip booked for Saturday"}).ID
	cake := submit(t, s, alice, map[string]any{"text": "Plum cake recipe from grandma"}).ID
	got := searchHits(t, s, alice, "boat")
	sig := map[string][]string{}
	for _, h := range got {
		sig[h.ID] = h.Signals
	}
	if len(got) == 0 || got[0].ID != boat || !slices.Equal(sig[boat], []string{"keyword", "dense"}) {
		t.Fatalf("the memory both signals find leads: %+v", got)
	}
	if !slices.Equal(sig[ship], []string{"dense"}) {
		t.Fatalf("dense search finds the ship for a boat: %+v", got)
	}
	if slices.Contains(sig[cake], "keyword") {
		t.Fatalf("cake has no query word: %+v", got)
	}
}

// TestReindexResumes: an interrupted reindex leaves a marker; the next run
// does not start over but indexes only what is still pending.
func TestReindexResumes(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	ctx := context.Background()
	for i := range 100 {
		if _, err := s.C.Memories.Submit(ctx, alice.ID, memories.SubmitInput{Text: "lighthouse note number " + strings.Repeat("x", i%7)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.C.Memories.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	n, err := s.C.Memories.Reindex(cctx, func(done, total int) {
		if done > 0 {
			cancel()
		}
	})
	if err == nil || !errors.Is(err, context.Canceled) || n == 0 || n >= 100 {
		t.Fatalf("interrupted reindex: n=%d err=%v", n, err)
	}
	marker := filepath.Join(s.App.DataDir(), "reindex.pending")
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("an interrupted reindex leaves its marker: %v", err)
	}
	var last, total int
	m, err := s.C.Memories.Reindex(ctx, func(done, all int) { last, total = done, all })
	// (the background reconciler may have indexed a few of the pending ones)
	if err != nil || m >= 100 || n+m > 100 || last != m || total != m {
		t.Fatalf("resumed reindex: first %d then %d (progress %d/%d) err %v", n, m, last, total, err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("a finished reindex removes its marker: %v", err)
	}
	if got := searchHits(t, s, alice, "lighthouse"); len(got) != 10 {
		t.Fatalf("all memories are searchable again: %d", len(got))
	}
}
