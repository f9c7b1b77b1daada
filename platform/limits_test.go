package platform_test

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// pausingBody is a 10 MB request body that stops after pauseAt bytes
// until the response has arrived: a server that waits for the whole body
// before answering starves it (then the rest is sent after a timeout and
// starved is set).
type pausingBody struct {
	n, size, pauseAt int64
	answered         chan struct{}
	starved          atomic.Bool
}

func (b *pausingBody) Read(p []byte) (int, error) {
	if b.n >= b.size {
		return 0, io.EOF
	}
	if b.n >= b.pauseAt && !b.starved.Load() {
		select {
		case <-b.answered:
			return 0, io.ErrUnexpectedEOF // the client gives up sending
		case <-time.After(10 * time.Second):
			b.starved.Store(true)
		}
	}
	if int64(len(p)) > b.size-b.n {
		p = p[:b.size-b.n]
	}
	for i := range p {
		p[i] = 'a'
	}
	b.n += int64(len(p))
	return len(p), nil
}

// TestTenMegabyteBodiesRefusedEarly: every endpoint that takes a body
// refuses a 10 MB one with a 4xx typed error, long before reading it all.
func TestTenMegabyteBodiesRefusedEarly(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	su := s.SuperuserToken()
	c := s.RegisterClient(su)
	u := s.UserToken(c, "bigbody")
	const size = 10 << 20
	cases := []struct {
		path, ctype, auth string
	}{
		{"/api/tools", "application/json", "Bearer " + u.Access},
		{"/mcp", "application/json", "Bearer " + u.Access},
		{"/token", "application/x-www-form-urlencoded", ""},
		{"/register", "application/json", ""},
		{"/revoke", "application/x-www-form-urlencoded", ""},
		{"/introspect", "application/x-www-form-urlencoded", ""},
		{"/authorize", "application/x-www-form-urlencoded", ""},
		{"/api/user-tokens/user-token", "application/json", ""},
		{"/api/admin/clients/register", "application/json", su},
	}
	for _, tc := range cases {
		for _, declared := range []bool{true, false} {
			name := tc.path + "/chunked"
			if declared {
				name = tc.path + "/content-length"
			}
			t.Run(name, func(t *testing.T) {
				body := &pausingBody{size: size, pauseAt: 3 << 20, answered: make(chan struct{})}
				req, err := http.NewRequest("POST", s.URL+tc.path, body)
				if err != nil {
					t.Fatal(err)
				}
				if declared {
					req.ContentLength = size
				}
				req.Header.Set("Content-Type", tc.ctype)
				req.Header.Set("Accept", "application/json, text/event-stream")
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := http.DefaultClient.Do(req)
				close(body.answered)
				if body.starved.Load() {
					t.Fatal("the server read far past the limit before answering")
				}
				if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
					return // the server answered and closed while the client was still writing
				}
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					t.Fatalf("want a 4xx, got %d %s", resp.StatusCode, got)
				}
				if declared && resp.StatusCode != http.StatusRequestEntityTooLarge {
					t.Fatalf("a declared 10 MB body: want 413, got %d %s", resp.StatusCode, got)
				}
				checkTyped(t, tc.path, fuzzResponse{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: got})
			})
		}
	}
}
