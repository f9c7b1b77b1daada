package fixedembed

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync/atomic"
	"time"
)

func sortStrings(s []string) { sort.Strings(s) }

// Model gives a text's vector; false means it has none (the server then
// answers 400, as an API does for input it cannot embed).
type Model interface {
	Embed(text string) ([]float32, bool)
	Len() int
}

// Table holds vectors fixed in advance, by text.
type Table struct {
	Vectors map[string][]float32
	Dims    int
}

// Embed looks text up.
func (t *Table) Embed(text string) ([]float32, bool) { v, ok := t.Vectors[text]; return v, ok }

// Len returns the vector length.
func (t *Table) Len() int { return t.Dims }

// Server answers POST /v1/embeddings the way OpenAI's API does (input as a
// string or a list of strings; float vectors), with the model's vectors.
type Server struct {
	Model    Model
	Name     string // model name it reports
	URL      string // base URL for an OpenAI client, ending in /v1
	Requests atomic.Int64

	srv *http.Server
	ln  net.Listener
}

// Serve starts a server on a free loopback port. Close stops it.
func Serve(m Model, name string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Model: m, Name: name, URL: "http://" + ln.Addr().String() + "/v1", ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	var body struct {
		Input      json.RawMessage `json:"input"`
		Dimensions int             `json:"dimensions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		apiError(w, http.StatusBadRequest, "request body is not JSON: "+err.Error())
		return
	}
	var inputs []string
	if err := json.Unmarshal(body.Input, &inputs); err != nil {
		var one string
		if err := json.Unmarshal(body.Input, &one); err != nil {
			apiError(w, http.StatusBadRequest, "input must be a string or a list of strings")
			return
		}
		inputs = []string{one}
	}
	if body.Dimensions != 0 && body.Dimensions != s.Model.Len() {
		apiError(w, http.StatusBadRequest, "this model only has its own dimensions")
		return
	}
	type datum struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	data := make([]datum, len(inputs))
	for i, in := range inputs {
		v, ok := s.Model.Embed(in)
		if !ok {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("input %d has no fixed embedding", i))
			return
		}
		data[i] = datum{"embedding", i, v}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": s.Name,
		"usage": map[string]int{"prompt_tokens": 0, "total_tokens": 0}})
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"message": msg, "type": "invalid_request_error"}})
}
