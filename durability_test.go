package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startServe runs the binary on addr with data in dir until the test ends
// or the caller kills it.
func startServe(t *testing.T, bin, addr, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--http", addr, "--dir", dir)
	cmd.Env = cleanEnv("PICARD_ADMIN_EMAIL=root@picard.test", "PICARD_ADMIN_PASSWORD=correct horse battery")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("picard did not get ready on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func postJSON(t *testing.T, url, auth string, body any, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0 // the server may be gone: not acknowledged
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Errorf("decode %s: %v", data, err)
		}
	}
	return resp.StatusCode
}

// TestAcknowledgedWritesSurviveKill9: every submit_memory the server
// acknowledged is there after the process is killed with SIGKILL while
// writes are still arriving, and the server restarted on the same data.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin := buildPicard(t)
	dir := filepath.Join(t.TempDir(), "pb_data")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	cmd := startServe(t, bin, addr, dir)

	var su struct{ Token string }
	if st := postJSON(t, base+"/api/collections/_superusers/auth-with-password", "", map[string]string{"identity": "root@picard.test", "password": "correct horse battery"}, &su); st != 200 {
		t.Fatalf("superuser sign-in: %d", st)
	}
	var cl struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if st := postJSON(t, base+"/api/admin/clients/register", su.Token, map[string]any{"name": "kill test", "redirect_uris": []string{"http://127.0.0.1:9/cb"}, "confidential": true}, &cl); st != 201 {
		t.Fatalf("register client: %d", st)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if st := postJSON(t, base+"/api/user-tokens/user-token", "", map[string]any{"client_id": cl.ClientID, "client_secret": cl.ClientSecret, "username": "durable", "email": "durable@picard.test", "create_if_not_exists": true}, &tok); st != 200 {
		t.Fatalf("user token: %d", st)
	}
	bearer := "Bearer " + tok.AccessToken

	// writers submit until the server dies; the kill lands mid-stream
	var (
		mu    sync.Mutex
		acked = map[string]string{} // id -> text
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("durable memory %d-%d", w, i)
				var m struct{ ID string }
				if postJSON(t, base+"/api/tools", bearer, map[string]any{"tool": "submit_memory", "data": map[string]any{"text": text}}, &m) != 200 {
					return // refused or the server is gone: not acknowledged
				}
				mu.Lock()
				acked[m.ID] = text
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = cmd.Process.Wait()
	close(stop)
	wg.Wait()

	startServe(t, bin, addr, dir)
	found := map[string]string{}
	cursor := ""
	for {
		data := map[string]any{"limit": 100}
		if cursor != "" {
			data["cursor"] = cursor
		}
		var page struct {
			Memories []struct {
				ID   string `json:"id"`
				Text string `json:"text"`
			} `json:"memories"`
			NextCursor string `json:"next_cursor"`
		}
		if st := postJSON(t, base+"/api/tools", bearer, map[string]any{"tool": "get_memories", "data": data}, &page); st != 200 {
			t.Fatalf("get_memories after restart: %d", st)
		}
		for _, m := range page.Memories {
			found[m.ID] = m.Text
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	for id, text := range acked {
		if found[id] != text {
			t.Errorf("acknowledged memory %s (%q) lost after kill -9: got %q", id, text, found[id])
		}
	}
	t.Logf("%d acknowledged writes before SIGKILL, all %d found after restart (%d stored in total)", len(acked), len(acked), len(found))
}
