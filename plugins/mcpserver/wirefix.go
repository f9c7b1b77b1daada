package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Wire fixes: two corners where mcp-go v1.2.1's answers on /mcp are not
// what the protocol asks, mended in the response writer of /mcp (the same
// place as the result splicer) for the one request that needs it; every
// other request goes through untouched.
//
//   - resources/read of a URI that names no resource: SEP-2164 says the
//     error SHOULD carry the URI as data.uri. mcp-go builds that error
//     (for a URI no handler matches) without data; and a handler that
//     reports a missing resource (memory://{id} of a memory the caller
//     cannot see) can only return an error, which mcp-go sends as -32603
//     internal error. The writer adds data.uri, and turns the handler's
//     not-found into the code mcp-go uses for unknown URIs at that
//     protocol version (-32002, or -32602 with HTTP 400 from 2026-07-28).
//   - subscriptions/listen that establishes nothing (SEP-2575): mcp-go
//     queues the acknowledgement and returns the result at once; its
//     notification forwarder and its response path then race, so the
//     result can be written before the acknowledgement, or the
//     acknowledgement dropped. The stream MUST open with the
//     acknowledgement: the writer holds a result that comes first until
//     the acknowledgement is written, and writes one itself (with the
//     empty set of notifications that was established) if mcp-go dropped
//     it.

// wireRequest is what the fixes need to know of a request.
type wireRequest struct {
	Method string          `json:"method"`
	ID     json.RawMessage `json:"id"`
	Params struct {
		URI string `json:"uri"`
	} `json:"params"`
}

var (
	methodRead   = []byte(`"` + string(mcp.MethodResourcesRead) + `"`)
	methodListen = []byte(`"` + string(mcp.MethodSubscriptionsListen) + `"`)
)

// wireFixFor returns the fix a request body needs, or nil (most requests:
// decided by two substring checks).
func wireFixFor(body []byte, accept string) *wireFix {
	if !bytes.Contains(body, methodRead) && !bytes.Contains(body, methodListen) {
		return nil
	}
	var req wireRequest
	// a batch (not in 2026-07-28) is left as mcp-go answers it
	if json.Unmarshal(body, &req) != nil || len(req.ID) == 0 || string(req.ID) == "null" {
		return nil
	}
	switch {
	case req.Method == string(mcp.MethodResourcesRead) && req.Params.URI != "":
	case req.Method == string(mcp.MethodSubscriptionsListen) && strings.Contains(accept, "text/event-stream"):
	default:
		return nil
	}
	return &wireFix{req: req, status: http.StatusOK}
}

type wireFixKey struct{}

func withWireFix(ctx context.Context, f *wireFix) context.Context {
	if f == nil {
		return ctx
	}
	return context.WithValue(ctx, wireFixKey{}, f)
}

// resourceNotFound is the error a resource handler returns for a URI that
// names nothing the caller may read; it tells the request's writer which
// code mcp-go would have used (see above).
func resourceNotFound(ctx context.Context, uri string) error {
	if f, ok := ctx.Value(wireFixKey{}).(*wireFix); ok {
		code := mcp.RESOURCE_NOT_FOUND
		if mcp.IsModernProtocol(server.RequestProtocolVersion(ctx)) {
			code = mcp.INVALID_PARAMS
		}
		f.mu.Lock()
		f.notFoundCode = code
		f.mu.Unlock()
	}
	return &notFoundError{uri: uri}
}

type notFoundError struct{ uri string }

func (e *notFoundError) Error() string { return server.ErrResourceNotFound.Error() + ": " + e.uri }
func (e *notFoundError) Unwrap() error { return server.ErrResourceNotFound }

// wireFix is the response writer state of one request that needs a fix.
type wireFix struct {
	req          wireRequest
	mu           sync.Mutex // mcp-go may write from its notification forwarder
	notFoundCode int        // set by resourceNotFound

	w       http.ResponseWriter
	status  int
	header  bool         // WriteHeader was called (and held)
	sent    bool         // header passed on
	through bool         // nothing more to fix: writes go straight on
	pending bytes.Buffer // bytes not yet passed on
	acked   bool         // subscriptions/listen: acknowledgement written
	held    []byte       // subscriptions/listen: the result, held back
}

func (f *wireFix) WriteHeader(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.through {
		f.w.WriteHeader(code)
		return
	}
	if !f.header {
		f.header, f.status = true, code
	}
}

func (f *wireFix) sendHeader() {
	if !f.sent {
		f.sent = true
		f.w.WriteHeader(f.status)
	}
}

func (f *wireFix) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.through {
		return f.w.Write(b)
	}
	f.pending.Write(b)
	if f.req.Method == string(mcp.MethodResourcesRead) || !f.isSSE() {
		return len(b), nil // one JSON answer: mended in finish
	}
	// SSE: look at each complete event
	for {
		data := f.pending.Bytes()
		end := bytes.Index(data, []byte("\n\n"))
		if end < 0 {
			return len(b), nil
		}
		event := append([]byte(nil), data[:end+2]...)
		f.pending.Next(end + 2)
		if err := f.listenEvent(event); err != nil {
			return 0, err
		}
	}
}

func (f *wireFix) isSSE() bool {
	return strings.HasPrefix(f.w.Header().Get("Content-Type"), "text/event-stream")
}

// listenEvent passes an SSE event of a subscriptions/listen stream on,
// holding the result back until the acknowledgement has been written.
func (f *wireFix) listenEvent(event []byte) error {
	var msg struct {
		Method string          `json:"method"`
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	if data, ok := sseData(event); ok && json.Unmarshal(data, &msg) == nil {
		switch {
		case msg.Method == mcp.MethodNotificationSubscriptionsAcknowledged:
			f.sendHeader()
			if _, err := f.w.Write(event); err != nil {
				return err
			}
			f.acked, f.through = true, true
			if f.held != nil {
				_, err := f.w.Write(f.held)
				f.held = nil
				return err
			}
			return nil
		case len(msg.Result) > 0 && !f.acked:
			f.held = event
			return nil
		}
	}
	f.sendHeader()
	_, err := f.w.Write(event)
	return err
}

func sseData(event []byte) ([]byte, bool) {
	for line := range bytes.Lines(event) {
		if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			return bytes.TrimSpace(d), true
		}
	}
	return nil, false
}

// finish writes what is still held, mended, once mcp-go is done.
func (f *wireFix) finish() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.through {
		return nil
	}
	if f.req.Method == string(mcp.MethodResourcesRead) {
		return f.finishRead()
	}
	if f.isSSE() {
		if f.held != nil { // the acknowledgement never came: mcp-go dropped it
			return f.writeAckThen(f.held)
		}
		f.sendHeader()
		_, err := f.w.Write(f.pending.Bytes())
		return err
	}
	// one JSON answer: a result means the acknowledgement was dropped
	var msg struct {
		Result json.RawMessage `json:"result"`
	}
	body := bytes.TrimSpace(f.pending.Bytes())
	if f.status == http.StatusOK && json.Unmarshal(body, &msg) == nil && len(msg.Result) > 0 {
		h := f.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Del("Content-Length")
		return f.writeAckThen(sseEvent(body))
	}
	f.sendHeader()
	_, err := f.w.Write(f.pending.Bytes())
	return err
}

// writeAckThen writes the acknowledgement of an empty subscription (what
// mcp-go sends when nothing asked for could be established), then event.
func (f *wireFix) writeAckThen(event []byte) error {
	ack, err := json.Marshal(mcp.JSONRPCNotification{
		JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{
			Method: mcp.MethodNotificationSubscriptionsAcknowledged,
			Params: mcp.NotificationParams{
				Meta:             map[string]any{mcp.MetaKeySubscriptionID: f.req.ID},
				AdditionalFields: map[string]any{"notifications": mcp.SubscriptionFilter{}},
			},
		},
	})
	if err != nil {
		return err
	}
	f.sendHeader()
	if _, err := f.w.Write(sseEvent(ack)); err != nil {
		return err
	}
	_, err = f.w.Write(event)
	return err
}

func sseEvent(data []byte) []byte {
	return append(append([]byte("event: message\ndata: "), data...), '\n', '\n')
}

// finishRead adds data.uri to a not-found error of resources/read.
func (f *wireFix) finishRead() error {
	body := f.pending.Bytes()
	if !f.isSSE() {
		if fixed, status, ok := f.mendRead(bytes.TrimSpace(body)); ok {
			f.w.Header().Del("Content-Length")
			f.status = status
			f.sendHeader()
			_, err := f.w.Write(append(fixed, '\n'))
			return err
		}
	}
	f.sendHeader()
	_, err := f.w.Write(body)
	return err
}

// mendRead returns the error answer with data.uri (and the code and HTTP
// status fixed when a handler reported the missing resource).
func (f *wireFix) mendRead(body []byte) ([]byte, int, bool) {
	var msg struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data,omitempty"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Error == nil || !bytes.Equal(msg.ID, f.req.ID) || len(msg.Error.Data) > 0 {
		return nil, 0, false
	}
	code, status := f.notFoundCode, f.status
	switch {
	case code != 0 && msg.Error.Code == mcp.INTERNAL_ERROR:
		// the handler's not-found, sent by mcp-go as an internal error
		msg.Error.Code = code
		if code == mcp.INVALID_PARAMS {
			status = http.StatusBadRequest // as mcp-go answers an unknown URI at 2026-07-28
		}
	case (msg.Error.Code == mcp.RESOURCE_NOT_FOUND || msg.Error.Code == mcp.INVALID_PARAMS) &&
		strings.Contains(msg.Error.Message, server.ErrResourceNotFound.Error()):
		// mcp-go's own: no handler for the URI
	default:
		return nil, 0, false
	}
	msg.Error.Data, _ = json.Marshal(map[string]string{"uri": f.req.Params.URI})
	out, err := json.Marshal(msg)
	if err != nil {
		return nil, 0, false
	}
	return out, status, true
}

// Flush flushes what was passed on.
func (f *wireFix) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sent {
		return
	}
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
}

func (f *wireFix) Header() http.Header { return f.w.Header() }

// Unwrap lets http.ResponseController reach the real writer.
func (f *wireFix) Unwrap() http.ResponseWriter { return f.w }
