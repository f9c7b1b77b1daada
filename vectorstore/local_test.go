package vectorstore

import (
	"context"
	"math"
	"slices"
	"testing"
)

func embedOne(t *testing.T, e Embedder, text string) []float32 {
	t.Helper()
	v, err := e.Embed(context.Background(), []string{text})
	if err != nil {
		t.Fatalf("embed %q: %v", text, err)
	}
	return v[0]
}

func TestLocalEmbedderDeterministicAndNormalised(t *testing.T) {
	e := NewLocalEmbedder()
	if sp := e.Space(); sp != LocalSpace || sp.Dims != 2048 {
		t.Fatalf("space = %v", sp)
	}
	texts := []string{
		"I adopted a grey cat called Miso in 2021.",
		"",
		"the and of to",
		"!!! ???",
		"Ünïcödé wörds and 東京 too",
		"repeated repeated repeated repeated repeated words",
	}
	first, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := NewLocalEmbedder().Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		if len(first[i]) != 2048 {
			t.Fatalf("%q: %d dims", text, len(first[i]))
		}
		if !slices.Equal(first[i], second[i]) {
			t.Errorf("%q: embedding differs between runs", text)
		}
		var norm float64
		for _, x := range first[i] {
			norm += float64(x) * float64(x)
		}
		if math.Abs(norm-1) > 1e-5 {
			t.Errorf("%q: squared norm %v, want 1", text, norm)
		}
	}
	if slices.Equal(first[1], first[3]) {
		t.Error("empty text and punctuation embed identically")
	}
}

func TestLocalEmbedderRanksRelatedHigher(t *testing.T) {
	e := NewLocalEmbedder()
	tests := []struct {
		query, related, unrelated string
	}{
		{"I love hiking in the mountains", "We went hiking in the mountains last summer", "The quarterly tax report is due on Friday"},
		{"what is my favourite food?", "My favourite food is sushi with extra wasabi", "The car needs new tyres before winter"},
		{"running shoes", "She runs every morning in her new shoes", "A cup of green tea with honey"},
		{"memories of my grandmother", "A memory I keep of grandmother's kitchen", "Deploy the server to production tonight"},
		{"birthday party planning", "Planning the party for Anna's birthday", "The river flooded the lower fields"},
		{"photograph", "photography exhibition", "volcano eruption"}, // shared sub-words
	}
	for _, tc := range tests {
		q := embedOne(t, e, tc.query)
		rel := float64(dot(q, embedOne(t, e, tc.related)))
		unrel := float64(dot(q, embedOne(t, e, tc.unrelated)))
		if rel <= unrel || rel < 0.1 {
			t.Errorf("query %q: related %.3f, unrelated %.3f", tc.query, rel, unrel)
		}
	}
}

func TestLocalStem(t *testing.T) {
	tests := map[string]string{
		"memories": "memory", "running": "run", "runs": "run", "stopped": "stop",
		"cats": "cat", "class": "class", "boxes": "box", "quickly": "quick",
		"family": "family", "bus": "bus", "analysis": "analysis", "called": "call",
	}
	for in, want := range tests {
		if got := stem(in); got != want {
			t.Errorf("stem(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLocalEmbedderHonoursCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewLocalEmbedder().Embed(ctx, []string{"x"}); err == nil {
		t.Fatal("embed with a cancelled context succeeded")
	}
}
