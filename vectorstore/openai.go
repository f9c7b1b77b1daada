package vectorstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// OpenAIConfig configures OpenAIEmbedder.
type OpenAIConfig struct {
	// APIKey is sent as a bearer token; it may be empty only when BaseURL
	// points at a server that needs none (Ollama, a local vLLM).
	APIKey string
	// BaseURL of an OpenAI-compatible API, e.g. "http://localhost:11434/v1";
	// empty means OpenAI itself.
	BaseURL string
	// Model defaults to "text-embedding-3-small".
	Model string
	// Dims is the vector length. Zero means the model's default, which is
	// known only for OpenAI's models (1536 for text-embedding-3-small and
	// ada-002, 3072 for text-embedding-3-large); other models must set it.
	// For text-embedding-3 models a smaller Dims is requested from the API.
	Dims int
	// BatchSize is the number of texts per request (default 96).
	BatchSize int
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
	// MaxRetries is how many times a failed request is retried after the
	// first attempt (default 4; negative for none). Only rate limiting
	// (429), server errors (5xx), timeouts and network errors are retried.
	MaxRetries int
}

// OpenAIEmbedder embeds texts through an OpenAI-compatible embeddings API.
// Its Space is {"openai", Model, Dims}. It is safe for concurrent use.
type OpenAIEmbedder struct {
	client     *openai.Client
	space      Space
	sendDims   bool // ask the API for space.Dims
	batch      int
	timeout    time.Duration
	maxRetries int
	backoff    time.Duration // first retry delay; doubled per attempt
	maxBackoff time.Duration
}

var _ Embedder = (*OpenAIEmbedder)(nil)

// openAIDefaultDims are the native vector lengths of OpenAI's models.
var openAIDefaultDims = map[string]int{
	"text-embedding-3-small": 1536,
	"text-embedding-3-large": 3072,
	"text-embedding-ada-002": 1536,
}

// NewOpenAIEmbedder checks cfg, fills in defaults and returns the embedder.
// It makes no request.
func NewOpenAIEmbedder(cfg OpenAIConfig) (*OpenAIEmbedder, error) {
	if cfg.APIKey == "" && cfg.BaseURL == "" {
		return nil, errors.New("openai embedder: an API key is required unless a base URL is set")
	}
	if cfg.Model == "" {
		cfg.Model = string(openai.SmallEmbedding3)
	}
	native, known := openAIDefaultDims[cfg.Model]
	switch {
	case cfg.Dims < 0:
		return nil, fmt.Errorf("openai embedder: negative dims %d", cfg.Dims)
	case cfg.Dims == 0 && !known:
		return nil, fmt.Errorf("openai embedder: dims must be set for model %q (its vector length is not known)", cfg.Model)
	case cfg.Dims == 0:
		cfg.Dims = native
	}
	sendDims := strings.HasPrefix(cfg.Model, "text-embedding-3-") && cfg.Dims != native
	if known && cfg.Dims != native && !sendDims {
		return nil, fmt.Errorf("openai embedder: model %q only produces %d dims, not %d", cfg.Model, native, cfg.Dims)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 96
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = 4
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	oc.HTTPClient = &http.Client{}
	return &OpenAIEmbedder{
		client:     openai.NewClientWithConfig(oc),
		space:      Space{Embedder: "openai", Model: cfg.Model, Dims: cfg.Dims},
		sendDims:   sendDims,
		batch:      cfg.BatchSize,
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		backoff:    500 * time.Millisecond,
		maxBackoff: 20 * time.Second,
	}, nil
}

// Space returns {"openai", model, dims}.
func (e *OpenAIEmbedder) Space() Space { return e.space }

// Embed returns one L2-normalised vector per text, in order, sending the
// texts in batches. Empty texts are sent as a single space because the API
// rejects empty input.
func (e *OpenAIEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	batches := (len(texts) + e.batch - 1) / e.batch
	for b := 0; b < batches; b++ {
		lo, hi := b*e.batch, min((b+1)*e.batch, len(texts))
		vecs, err := e.embedBatch(ctx, texts[lo:hi])
		if err != nil {
			return nil, fmt.Errorf("openai embed (model %s) batch %d/%d, texts %d-%d: %w",
				e.space.Model, b+1, batches, lo, hi-1, err)
		}
		out = append(out, vecs...)
	}
	return out, nil
}

func (e *OpenAIEmbedder) embedBatch(ctx context.Context, texts []string) ([][]float32, error) {
	input := make([]string, len(texts))
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			t = " "
		}
		input[i] = t
	}
	req := openai.EmbeddingRequestStrings{
		Input:          input,
		Model:          openai.EmbeddingModel(e.space.Model),
		EncodingFormat: openai.EmbeddingEncodingFormatFloat,
	}
	if e.sendDims {
		req.Dimensions = e.space.Dims
	}
	for attempt := 0; ; attempt++ {
		res, err := e.call(ctx, req)
		if err == nil {
			return e.collect(res, len(texts))
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("attempt %d: %w (%w)", attempt+1, ctx.Err(), err)
		}
		if !retryable(err) || attempt >= e.maxRetries {
			return nil, fmt.Errorf("attempt %d: %w", attempt+1, err)
		}
		if err := sleepCtx(ctx, e.delay(attempt)); err != nil {
			return nil, fmt.Errorf("attempt %d: waiting to retry: %w", attempt+1, err)
		}
	}
}

func (e *OpenAIEmbedder) call(ctx context.Context, req openai.EmbeddingRequestStrings) (openai.EmbeddingResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	return e.client.CreateEmbeddings(ctx, req)
}

// collect checks a response and returns its vectors in input order.
func (e *OpenAIEmbedder) collect(res openai.EmbeddingResponse, n int) ([][]float32, error) {
	if len(res.Data) != n {
		return nil, fmt.Errorf("response holds %d embeddings for %d texts", len(res.Data), n)
	}
	out := make([][]float32, n)
	for _, d := range res.Data {
		if d.Index < 0 || d.Index >= n || out[d.Index] != nil {
			return nil, fmt.Errorf("response has a bad or repeated embedding index %d", d.Index)
		}
		if len(d.Embedding) != e.space.Dims {
			return nil, fmt.Errorf("model %s returned %d dims, expected %d: %w",
				e.space.Model, len(d.Embedding), e.space.Dims, ErrSpaceMismatch)
		}
		v, err := normalized(e.space, d.Embedding)
		if err != nil {
			return nil, fmt.Errorf("embedding %d: %w", d.Index, err)
		}
		out[d.Index] = v
	}
	return out, nil
}

// delay is the wait before retry number attempt+1: exponential with
// jitter in [50%, 100%].
func (e *OpenAIEmbedder) delay(attempt int) time.Duration {
	d := float64(e.backoff) * math.Pow(2, float64(attempt))
	d = min(d, float64(e.maxBackoff))
	return time.Duration(d * (0.5 + rand.Float64()/2))
}

// retryable reports whether a failed request may succeed when repeated:
// rate limiting, server errors, timeouts and network failures.
func retryable(err error) bool {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		return retryableStatus(apiErr.HTTPStatusCode)
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) {
		return retryableStatus(reqErr.HTTPStatusCode)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
