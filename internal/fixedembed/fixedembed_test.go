package fixedembed

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/picard-mcp/picard/vectorstore"
)

func cosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// corpus: sailing words occur together, baking words occur together.
var corpus = []string{
	"We sailed the boat across the bay",
	"The boat has a new sail and a longer mast",
	"Sailing at dawn, the sail was full",
	"The mast of the boat cracked in the storm",
	"I baked a cake with plums",
	"The oven was too hot for the cake",
	"Baking bread in the new oven",
	"Plum cake and bread for the party",
}

// TestLSARelatesWordsOfTheSameMemories: a text that shares no word with
// a memory still lands near it when its words keep the same company.
func TestLSARelatesWordsOfTheSameMemories(t *testing.T) {
	m, err := Fit(corpus, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	mast, _ := m.Embed("mast")          // no word in common with the next one
	sail, _ := m.Embed("sailing, sail") // both sailing
	oven, _ := m.Embed("oven")
	if got, other := cosine(mast, sail), cosine(mast, oven); got < 0.9 || other > 0.5 {
		t.Fatalf("mast~sail %.2f, mast~oven %.2f: related words should be near, unrelated far", got, other)
	}
	again, _ := m.Embed("mast")
	if cosine(mast, again) < 1-1e-6 {
		t.Fatal("the same text must get the same vector")
	}
	var n float64
	for _, x := range mast {
		n += float64(x) * float64(x)
	}
	if math.Abs(n-1) > 1e-5 {
		t.Fatalf("vectors are unit length, got %.4f", n)
	}
	if _, err := Fit(corpus[:1], 2, 1); err == nil {
		t.Fatal("one text is too small a corpus")
	}
}

// TestServerSpeaksTheEmbeddingsAPI: Picard's OpenAI client gets the
// table's vectors in order, and a text the table lacks is a clear error.
func TestServerSpeaksTheEmbeddingsAPI(t *testing.T) {
	tab := &Table{Dims: 3, Vectors: map[string][]float32{
		"a": {1, 0, 0}, "b": {0, 1, 0}, "c": {0, 0, 1},
	}}
	srv, err := Serve(tab, "fixed")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	emb, err := vectorstore.NewOpenAIEmbedder(vectorstore.OpenAIConfig{BaseURL: srv.URL, Model: "fixed", Dims: 3, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := emb.Embed(context.Background(), []string{"c", "a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]float32{{0, 0, 1}, {1, 0, 0}, {0, 1, 0}} {
		if cosine(got[i], want) < 0.999 {
			t.Fatalf("vector %d is %v, want %v", i, got[i], want)
		}
	}
	if _, err := emb.Embed(context.Background(), []string{"a", "unknown"}); err == nil || !strings.Contains(err.Error(), "no fixed embedding") {
		t.Fatalf("a text without a vector must fail clearly, got %v", err)
	}
}
