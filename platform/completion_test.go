package platform_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestMCPCompletesPersonaUserID: a host asking completion/complete for the
// persona prompt's user_id gets the ids of users with public memories
// matching what was typed (username or id prefix) and nobody else.
func TestMCPCompletesPersonaUserID(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	client := s.RegisterClient(s.SuperuserToken())
	alice, albert, bob, carol := s.UserToken(client, "alice"), s.UserToken(client, "albert"), s.UserToken(client, "bob"), s.UserToken(client, "carol")
	for _, u := range []picardtest.User{alice, albert, bob} {
		if r := s.Tool(u, "submit_memory", map[string]any{"text": "a public note", "permission": "public"}); r.Status != 200 {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
	}
	// carol has only a private memory: no persona to offer
	if r := s.Tool(carol, "submit_memory", map[string]any{"text": "a private note"}); r.Status != 200 {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	c := connect(t, s, carol)
	complete := func(arg, value string) []string {
		t.Helper()
		req := mcp.CompleteRequest{}
		req.Params.Ref = mcp.PromptReference{Type: "ref/prompt", Name: "persona"}
		req.Params.Argument.Name = arg
		req.Params.Argument.Value = value
		res, err := c.Complete(context.Background(), req)
		if err != nil {
			t.Fatalf("complete %s=%q: %v", arg, value, err)
		}
		out := slices.Clone(res.Completion.Values)
		slices.Sort(out)
		return out
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{"al", sorted(alice.ID, albert.ID)},
		{"AL", sorted(alice.ID, albert.ID)},
		{"bo", []string{bob.ID}}, // (not a hex digit: no id can match)
		{"", sorted(alice.ID, albert.ID, bob.ID)},
		{"car", []string{}},
		{bob.ID[:8], []string{bob.ID}},
		{"%", []string{}},
	} {
		if got := complete("user_id", tc.value); !slices.Equal(got, tc.want) {
			t.Errorf("user_id %q: got %v, want %v", tc.value, got, tc.want)
		}
	}
	if got := complete("question", "al"); len(got) != 0 {
		t.Errorf("question has no finite set of values: got %v", got)
	}
}

// TestMCPSubscriptionsListenAcknowledges: a 2026-07-28 client opening
// subscriptions/listen gets an SSE stream whose first message is
// notifications/subscriptions/acknowledged tagged with its request id.
func TestMCPSubscriptionsListenAcknowledges(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	u := s.UserToken(s.RegisterClient(s.SuperuserToken()), "listener")
	body := `{"jsonrpc":"2.0","id":42,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},` +
		`"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + mcp.ProtocolVersion20260728 + `","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` + mcp.MetaKeyClientCapabilities + `":{}}}}`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", s.URL+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+u.Access)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
	req.Header.Set(mcp.HeaderMethod, string(mcp.MethodSubscriptionsListen))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("want an SSE stream, got %d %s: %s", resp.StatusCode, ct, b)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var msg struct {
			Method string `json:"method"`
			Params struct {
				Meta map[string]any `json:"_meta"`
			} `json:"params"`
		}
		if err := json.Unmarshal([]byte(data), &msg); err != nil {
			t.Fatalf("bad event %q: %v", data, err)
		}
		if msg.Method != mcp.MethodNotificationSubscriptionsAcknowledged {
			t.Fatalf("first message: want %s, got %s", mcp.MethodNotificationSubscriptionsAcknowledged, data)
		}
		if id, _ := msg.Params.Meta[mcp.MetaKeySubscriptionID].(float64); id != 42 {
			t.Fatalf("acknowledgement not tagged with the subscription id: %s", data)
		}
		return
	}
	t.Fatalf("stream ended without an acknowledgement: %v", sc.Err())
}
