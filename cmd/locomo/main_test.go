package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/picard-mcp/picard/vectorstore"
)

// writeConversation writes a small hand-made conversation in LoCoMo's
// format: 40 turns over two sessions; half the questions share a rare word
// with their evidence turn, half only paraphrase it.
func writeConversation(t *testing.T, dir string) {
	t.Helper()
	var s1, s2 []map[string]string
	var qas []map[string]any
	for i := range 40 {
		text := fmt.Sprintf("we talked about thing%d and the weather again", i)
		sess, list := 1, &s1
		if i >= 20 {
			sess, list = 2, &s2
		}
		id := fmt.Sprintf("D%d:%d", sess, len(*list)+1)
		*list = append(*list, map[string]string{"speaker": []string{"Ann", "Bob"}[i%2], "dia_id": id, "text": text})
		q := fmt.Sprintf("what did they say about thing%d?", i)
		if i%2 == 1 {
			q = fmt.Sprintf("which subject came up in turn number %d?", i) // no word in common
		}
		if i%4 < 2 {
			qas = append(qas, map[string]any{"question": q, "evidence": []string{id}, "category": 1 + i%4})
		}
	}
	raw, err := json.Marshal(map[string]any{
		"speaker_a": "Ann", "speaker_b": "Bob",
		"session_1_date_time": "1:00 pm on 1 May, 2023", "session_1": s1,
		"session_2_date_time": "2:00 pm on 8 May, 2023", "session_2": s2,
		"qa": qas,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "1.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCompareFusesThroughTheOpenAIClient runs the compare mode end to end
// on the embedded store: the simulated embedder's fixed vectors reach the
// store through the OpenAI client, dense search finds the paraphrased
// questions' turns that keyword search cannot, and fusion keeps both.
func TestCompareFusesThroughTheOpenAIClient(t *testing.T) {
	dir := t.TempDir()
	writeConversation(t, dir)
	convs, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(convs) != 1 || len(convs[0].turns) != 40 || convs[0].turns[20].DiaID != "D2:1" {
		t.Fatalf("sessions must load in order: %+v", convs)
	}
	emb, err := embedder("simulated", convs, 16, 0, 0, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	store, err := vectorstore.OpenEmbedded(filepath.Join(t.TempDir(), "vectors.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	opts := vectorstore.DefaultHybridOptions()
	got := evaluate(context.Background(), "embedded", store, emb, convs, "compare", opts)
	kw, dense, fused := got["keyword"].all, got["dense"].all, got["fused"].all
	r10 := func(x tally) float64 { return x.r10 / float64(x.n) }
	if kw.n != 20 || r10(dense) != 1 {
		t.Fatalf("20 questions, and noise-free vectors find every turn: %d, dense %.2f", kw.n, r10(dense))
	}
	if r10(kw) >= 0.9 || r10(kw) < 0.5 {
		t.Fatalf("keyword search finds the questions that share a word, not the paraphrases: %.2f", r10(kw))
	}
	if r10(fused) < max(r10(kw), r10(dense)) {
		t.Fatalf("fusion fell below its better signal: keyword %.2f dense %.2f fused %.2f", r10(kw), r10(dense), r10(fused))
	}
	if _, err := embedder("lsa", convs, 8, 0, 0, "", "", 0); err != nil {
		t.Fatalf("the lsa stand-in fits on the conversation: %v", err)
	}
	if _, err := embedder("nope", convs, 8, 0, 0, "", "", 0); err == nil {
		t.Fatal("an unknown embedder is an error")
	}
}
