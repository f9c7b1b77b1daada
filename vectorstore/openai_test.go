package vectorstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeOpenAI is a local stand-in for the OpenAI embeddings API (the real
// one cannot be reached from tests). Each text's vector encodes the text's
// length in its first component so tests can check ordering. fail decides,
// per request number (from 1), to answer with an error status instead.
type fakeOpenAI struct {
	dims     int           // dims returned
	delay    time.Duration // before answering
	fail     func(n int) int
	reverse  bool // return data in reverse order
	requests atomic.Int32

	mu        sync.Mutex
	batchLens []int
	lastBody  map[string]any
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(f.requests.Add(1))
	if r.URL.Path != "/v1/embeddings" || r.Method != http.MethodPost {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.Header.Get("Authorization") != "Bearer test-key" {
		writeAPIError(w, http.StatusUnauthorized, "bad key")
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeAPIError(w, http.StatusBadRequest, err.Error())
		return
	}
	inputs, _ := body["input"].([]any)
	f.mu.Lock()
	f.batchLens = append(f.batchLens, len(inputs))
	f.lastBody = body
	f.mu.Unlock()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	if f.fail != nil {
		if code := f.fail(n); code != 0 {
			writeAPIError(w, code, fmt.Sprintf("failure %d", code))
			return
		}
	}
	type datum struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	data := make([]datum, len(inputs))
	for i, in := range inputs {
		s, _ := in.(string)
		v := make([]float32, f.dims)
		v[0] = float32(len(s))
		if f.dims > 1 {
			v[1] = 1
		}
		data[i] = datum{Object: "embedding", Index: i, Embedding: v}
	}
	if f.reverse {
		for i, j := 0, len(data)-1; i < j; i, j = i+1, j-1 {
			data[i], data[j] = data[j], data[i]
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": body["model"]})
}

func writeAPIError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"message":%q,"type":"test"}}`, msg)
}

func newTestOpenAI(t *testing.T, f *fakeOpenAI, cfg OpenAIConfig) *OpenAIEmbedder {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg.APIKey = "test-key"
	cfg.BaseURL = srv.URL + "/v1"
	if cfg.Model == "" {
		cfg.Model = "test-model"
	}
	e, err := NewOpenAIEmbedder(cfg)
	if err != nil {
		t.Fatalf("new openai embedder: %v", err)
	}
	e.backoff = time.Millisecond // keep retries fast
	return e
}

func TestOpenAIBatchesInOrder(t *testing.T) {
	f := &fakeOpenAI{dims: 8, reverse: true}
	e := newTestOpenAI(t, f, OpenAIConfig{Dims: 8, BatchSize: 100})
	texts := make([]string, 250)
	for i := range texts {
		texts[i] = strings.Repeat("x", i+1)
	}
	texts[7] = "" // sent as " "
	vecs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.requests.Load(); got != 3 {
		t.Fatalf("%d requests for 250 texts in batches of 100, want 3", got)
	}
	if fmt.Sprint(f.batchLens) != "[100 100 50]" {
		t.Fatalf("batch sizes %v", f.batchLens)
	}
	if len(vecs) != len(texts) {
		t.Fatalf("%d vectors for %d texts", len(vecs), len(texts))
	}
	for i, v := range vecs {
		wantLen := float64(len(texts[i]))
		if i == 7 {
			wantLen = 1
		}
		// v = normalise([len, 1, 0...]) so v0/v1 recovers the length
		if math.Abs(float64(v[0]/v[1])-wantLen) > 1e-3 {
			t.Fatalf("vector %d belongs to a text of length %v, want %v", i, v[0]/v[1], wantLen)
		}
		if n := float64(dot(v, v)); math.Abs(n-1) > 1e-5 {
			t.Fatalf("vector %d squared norm %v, want 1", i, n)
		}
	}
	if sp := e.Space(); sp != (Space{Embedder: "openai", Model: "test-model", Dims: 8}) {
		t.Fatalf("space = %v", sp)
	}
}

func TestOpenAIRetries(t *testing.T) {
	tests := []struct {
		name       string
		fail       func(n int) int
		maxRetries int
		wantErr    bool
		wantCalls  int32
	}{
		{"429 then success", func(n int) int { return map[int]int{1: 429, 2: 429}[n] }, 0, false, 3},
		{"500 then success", func(n int) int { return map[int]int{1: 500}[n] }, 0, false, 2},
		{"503 until retries run out", func(int) int { return 503 }, 2, true, 3},
		{"400 is not retried", func(int) int { return 400 }, 0, true, 1},
		{"401 is not retried", func(int) int { return 401 }, 0, true, 1},
		{"retries disabled", func(int) int { return 429 }, -1, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeOpenAI{dims: 4, fail: tc.fail}
			e := newTestOpenAI(t, f, OpenAIConfig{Dims: 4, MaxRetries: tc.maxRetries})
			vecs, err := e.Embed(context.Background(), []string{"a", "b"})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got := f.requests.Load(); got != tc.wantCalls {
				t.Fatalf("%d requests, want %d", got, tc.wantCalls)
			}
			if err == nil && len(vecs) != 2 {
				t.Fatalf("%d vectors, want 2", len(vecs))
			}
			if err != nil && !strings.Contains(err.Error(), "status code") {
				t.Fatalf("error does not say what failed: %v", err)
			}
		})
	}
}

func TestOpenAIDimsMismatch(t *testing.T) {
	f := &fakeOpenAI{dims: 6}
	e := newTestOpenAI(t, f, OpenAIConfig{Dims: 8})
	_, err := e.Embed(context.Background(), []string{"a"})
	if !errors.Is(err, ErrSpaceMismatch) || !strings.Contains(err.Error(), "6 dims") {
		t.Fatalf("err = %v, want ErrSpaceMismatch naming the 6 returned dims", err)
	}
	if got := f.requests.Load(); got != 1 {
		t.Fatalf("%d requests, want 1 (a wrong answer is not retried)", got)
	}
}

func TestOpenAITimeout(t *testing.T) {
	f := &fakeOpenAI{dims: 4, delay: time.Second}
	e := newTestOpenAI(t, f, OpenAIConfig{Dims: 4, Timeout: 50 * time.Millisecond, MaxRetries: 1})
	start := time.Now()
	_, err := e.Embed(context.Background(), []string{"a"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if got := f.requests.Load(); got != 2 {
		t.Fatalf("%d requests, want 2 (a timeout is retried once)", got)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("took %v: the per-request timeout was not applied", d)
	}
}

func TestOpenAIHonoursCancel(t *testing.T) {
	f := &fakeOpenAI{dims: 4, fail: func(int) int { return 429 }}
	e := newTestOpenAI(t, f, OpenAIConfig{Dims: 4, MaxRetries: 100})
	e.backoff = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := e.Embed(ctx, []string{"a"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	if got := f.requests.Load(); got != 1 {
		t.Fatalf("%d requests, want 1", got)
	}
}

func TestOpenAIConfig(t *testing.T) {
	tests := []struct {
		name     string
		cfg      OpenAIConfig
		wantDims int
		sendDims bool
		wantErr  string
	}{
		{"default model", OpenAIConfig{APIKey: "k"}, 1536, false, ""},
		{"large", OpenAIConfig{APIKey: "k", Model: "text-embedding-3-large"}, 3072, false, ""},
		{"ada", OpenAIConfig{APIKey: "k", Model: "text-embedding-ada-002"}, 1536, false, ""},
		{"shortened v3", OpenAIConfig{APIKey: "k", Model: "text-embedding-3-small", Dims: 256}, 256, true, ""},
		{"ada cannot shorten", OpenAIConfig{APIKey: "k", Model: "text-embedding-ada-002", Dims: 256}, 0, false, "only produces"},
		{"unknown model needs dims", OpenAIConfig{BaseURL: "http://localhost:11434/v1", Model: "nomic-embed-text"}, 0, false, "dims must be set"},
		{"unknown model with dims", OpenAIConfig{BaseURL: "http://localhost:11434/v1", Model: "nomic-embed-text", Dims: 768}, 768, false, ""},
		{"no key and no base url", OpenAIConfig{}, 0, false, "API key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewOpenAIEmbedder(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Space().Dims != tc.wantDims || e.sendDims != tc.sendDims {
				t.Fatalf("dims %d (sent: %v), want %d (sent: %v)", e.Space().Dims, e.sendDims, tc.wantDims, tc.sendDims)
			}
		})
	}
}

func TestOpenAISendsRequestedDims(t *testing.T) {
	f := &fakeOpenAI{dims: 256}
	e := newTestOpenAI(t, f, OpenAIConfig{Model: "text-embedding-3-small", Dims: 256})
	if _, err := e.Embed(context.Background(), []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if got := f.lastBody["dimensions"]; got != float64(256) {
		t.Fatalf("request dimensions = %v, want 256", got)
	}
	if got := f.lastBody["model"]; got != "text-embedding-3-small" {
		t.Fatalf("request model = %v", got)
	}
}
