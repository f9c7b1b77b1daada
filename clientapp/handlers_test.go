package main

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestEveryRoute walks every route as two people would, on SQLite and on
// PostgreSQL, against a real in-process Picard.
func TestEveryRoute(t *testing.T) {
	backends(t, func(t *testing.T, pg bool) {
		e := start(t, pg, nil, nil)
		e.register()
		alice, bob := e.browser(), e.browser()

		t.Run("health and static", func(t *testing.T) {
			must(t, alice.get("/healthz"), 200, `"ok"`)
			must(t, alice.get("/readyz"), 200, `"ready"`, `"picard":"up"`)
			must(t, alice.get("/static/htmx.min.js"), 200, "htmx")
			if err := Healthcheck(context.Background(), e.URL); err != nil {
				t.Fatalf("healthcheck: %v", err)
			}
		})

		t.Run("signup, duplicate, bad input keeps values", func(t *testing.T) {
			must(t, alice.get("/signup"), 200, `<label for="username">Username</label>`, "Sign up")
			p := alice.post("/signup", url.Values{"username": {"alice"}, "email": {"not-an-email"}, "password": {"short"}})
			must(t, p, http.StatusUnprocessableEntity, `value="alice"`, "Enter an email address", "Use 8 to 256 characters")
			alice.signup("alice")
			p = bob.post("/signup", url.Values{"username": {"Alice"}, "email": {"x@example.test"}, "password": {"password-x"}})
			must(t, p, http.StatusUnprocessableEntity, "already taken", `value="Alice"`)
			bob.signup("bob")
		})

		t.Run("pages need sign-in; login rate limit", func(t *testing.T) {
			anon := e.browser()
			for _, path := range []string{"/", "/memories", "/memories/new", "/search", "/personas", "/account", "/connect"} {
				if p := anon.get(path); p.Status != http.StatusSeeOther || p.Location != "/login" {
					t.Fatalf("%s anonymous: %d %s", path, p.Status, p.Location)
				}
			}
			must(t, anon.get("/login"), 200, "Sign in")
			if p := anon.get("/register"); p.Status != http.StatusMovedPermanently || p.Location != "/signup" {
				t.Fatalf("/register: %d %s", p.Status, p.Location)
			}
			must(t, anon.get("/no/such/page"), http.StatusNotFound, "Not found")
			must(t, anon.get("/logout"), 200, "Sign out")
			must(t, anon.post("/login", url.Values{"username": {"alice"}, "password": {"wrong-password"}}), http.StatusUnauthorized, "Wrong username or password", `value="alice"`)
			p := anon.post("/login", url.Values{"username": {"alice"}, "password": {"password-alice"}})
			if p.Status != http.StatusSeeOther || p.Location != "/" {
				t.Fatalf("login: %d %s", p.Status, p.Body)
			}
			must(t, anon.post("/logout", nil), http.StatusSeeOther)
			if p := anon.get("/"); p.Status != http.StatusSeeOther {
				t.Fatalf("after logout: %d", p.Status)
			}
			for range 5 {
				anon.post("/login", url.Values{"username": {"bob"}, "password": {"guess"}})
			}
			must(t, anon.post("/login", url.Values{"username": {"bob"}, "password": {"password-bob"}}), http.StatusTooManyRequests, "Too many failed attempts")
			e.app.limiter.Succeed("bob")
		})

		t.Run("not connected: dashboard says so, memory pages send to /connect", func(t *testing.T) {
			must(t, alice.get("/"), 200, "not connected")
			if p := alice.get("/memories"); p.Status != http.StatusSeeOther || p.Location != "/connect" {
				t.Fatalf("/memories unconnected: %d %s", p.Status, p.Location)
			}
			must(t, alice.get("/connect"), 200, "Connect to Picard", "Sign in with Picard")
		})

		t.Run("direct connect", func(t *testing.T) {
			alice.connect()
			bob.connect()
			must(t, alice.get("/connect"), 200, "Disconnect")
			must(t, alice.get("/"), 200, "Memories by permission", "statistical")
		})

		t.Run("direct connect never binds another person's Picard account by email", func(t *testing.T) {
			cr, err := e.app.credentials(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			victim := e.picard.UserToken(picardtest.Client{ID: cr.ID, Secret: cr.Secret}, "victim")
			e.picard.Tool(victim, "submit_memory", map[string]any{"text": "victim's private thoughts", "permission": "private"})
			mallory := e.browser()
			p := mallory.post("/signup", url.Values{"username": {"mallory"}, "email": {"victim@picard.test"}, "password": {"password-mallory"}})
			must(t, p, http.StatusSeeOther)
			mallory.connect()
			p = mallory.get("/search?query=victim+private+thoughts&scope=own")
			must(t, p, 200)
			mustNot(t, p, "victim's private thoughts")
			ctx := context.Background()
			mu, _ := e.app.store.UserByUsername(ctx, "mallory")
			if c, _ := e.app.store.Connection(ctx, mu.ID); c == nil || c.PicardUserID == victim.ID {
				t.Fatal("mallory was connected to the victim's Picard account")
			}
			// the same username as an existing Picard account: refused, with a way out
			imp := e.browser()
			imp.post("/signup", url.Values{"username": {"victim"}, "email": {"imp@example.test"}, "password": {"password-imp"}})
			must(t, imp.post("/connect/direct", nil), http.StatusBadGateway, "Sign in with Picard")
		})

		var private, public, shared string
		t.Run("create: validation, sharing by username, plugin permissions listed", func(t *testing.T) {
			must(t, alice.get("/memories/new"), 200, `<option value="statistical"`, `<label for="share_with">Share with</label>`)
			p := alice.post("/memories/new", url.Values{"text": {"  "}, "permission": {"private"}, "share_with": {"bob"}})
			must(t, p, http.StatusUnprocessableEntity, "Write something to remember", `value="bob"`)
			p = alice.post("/memories/new", url.Values{"text": {strings.Repeat("x", MaxTextLen+1)}, "permission": {"private"}})
			must(t, p, http.StatusUnprocessableEntity, "At most 10000 characters")
			p = alice.post("/memories/new", url.Values{"text": {"keep me"}, "permission": {"shared"}, "share_with": {"nobody-here"}})
			must(t, p, http.StatusUnprocessableEntity, "No such user: nobody-here", "keep me")
			p = alice.post("/memories/new", url.Values{"text": {"keep me"}, "permission": {"private"}, "expires": {"31/01/2030"}})
			must(t, p, http.StatusUnprocessableEntity, "Use a date like", "keep me")
			private = alice.create("alice private diary: the vault code is 4711", "private", "")
			public = alice.create("alice public: I love sailing on the lake", "public", "")
			shared = alice.create("alice shared with bob: the party is on friday", "shared", "bob")
			must(t, alice.get("/memories/"+shared), 200, "the party is on friday", "bob")
		})

		t.Run("share with a group by its name", func(t *testing.T) {
			ctx := context.Background()
			bu, _ := e.app.store.UserByUsername(ctx, "bob")
			bc, err := e.app.store.Connection(ctx, bu.ID)
			if err != nil {
				t.Fatal(err)
			}
			col, err := e.picard.App.FindCollectionByNameOrId("groups")
			if err != nil {
				t.Fatal(err)
			}
			g := core.NewRecord(col)
			g.Set("name", "Sailors")
			g.Set("members", []string{bc.PicardUserID})
			if err := e.picard.App.Save(g); err != nil {
				t.Fatal(err)
			}
			p := alice.post("/memories/new", url.Values{"text": {"regatta plans"}, "permission": {"shared"}, "share_groups": {"no-such-group"}})
			must(t, p, http.StatusUnprocessableEntity, "No such group: no-such-group")
			p = alice.post("/memories/new", url.Values{"text": {"regatta plans for the sailors"}, "permission": {"shared"}, "share_groups": {"sailors"}})
			id := memoryLink.FindStringSubmatch(p.Location)
			if id == nil {
				t.Fatalf("share with group: %d %s", p.Status, p.Body)
			}
			must(t, alice.get("/memories/"+id[1]), 200, "Sailors")
			must(t, bob.get("/search?query=regatta"), 200, "regatta plans for the sailors")
		})

		t.Run("list, filters, pagination link", func(t *testing.T) {
			p := alice.get("/memories")
			must(t, p, 200, "vault code", "sailing", "party", "Delete selected", "Make private", `type="checkbox"`)
			if strings.Index(p.Body, "party") > strings.Index(p.Body, "vault code") {
				t.Fatal("newest first: the shared memory was created last")
			}
			p = alice.get("/memories?sort=oldest")
			if strings.Index(p.Body, "party") < strings.Index(p.Body, "vault code") {
				t.Fatal("oldest first")
			}
			p = alice.get("/memories?permission=public")
			must(t, p, 200, "sailing")
			mustNot(t, p, "vault code")
			today := time.Now().UTC().Format("2006-01-02")
			must(t, alice.get("/memories?from="+today+"&to="+today), 200, "sailing")
			p = alice.get("/memories?to=2001-01-01")
			mustNot(t, p, "sailing")
			must(t, alice.get("/memories?from=yesterday"), http.StatusUnprocessableEntity, "Use a date like")
			for i := range 21 {
				alice.create("filler "+string(rune('a'+i)), "private", "")
			}
			p = alice.get("/memories")
			must(t, p, 200, "Next page")
			next := p.Body[strings.Index(p.Body, `href="/memories?cursor=`)+6:]
			next = strings.ReplaceAll(next[:strings.Index(next, `"`)], "&amp;", "&")
			must(t, alice.get(next), 200, "vault code")
		})

		t.Run("edit", func(t *testing.T) {
			must(t, alice.get("/memories/"+public+"/edit"), 200, "sailing", `<option value="public" selected`)
			p := alice.post("/memories/"+public+"/edit", url.Values{"text": {"alice public: I love sailing and rowing"}, "permission": {"public"}, "expires": {time.Now().AddDate(0, 0, 3).Format("2006-01-02")}})
			must(t, p, http.StatusSeeOther)
			must(t, alice.get("/memories/"+public), 200, "sailing and rowing")
			p = alice.post("/memories/"+public+"/edit", url.Values{"text": {"changed while refused"}, "permission": {"shared"}})
			must(t, p, http.StatusUnprocessableEntity, "Picard says", "changed while refused")
			p = alice.get("/memories/" + public)
			must(t, p, 200, "sailing and rowing", "<dd>public</dd>")
			mustNot(t, p, "changed while refused")
			must(t, alice.get("/"), 200, "sailing and rowing") // expiring within 7 days
		})

		t.Run("another person's memory is 404", func(t *testing.T) {
			for _, path := range []string{"/memories/" + private, "/memories/" + private + "/edit", "/memories/" + private + "/delete", "/memories/" + public + "/edit", "/memories/00000000-0000-4000-8000-000000000000"} {
				p := bob.get(path)
				must(t, p, http.StatusNotFound)
				mustNot(t, p, "vault code")
			}
			must(t, bob.post("/memories/"+private+"/delete", nil), http.StatusNotFound)
			must(t, bob.post("/memories/bulk/confirm", url.Values{"id": {private}, "action": {"delete"}}), http.StatusNotFound)
			must(t, alice.get("/memories/"+private), 200, "vault code")
		})

		t.Run("search and personas never show the private memory to bob", func(t *testing.T) {
			must(t, bob.get("/search"), 200, `<label for="query">Query</label>`)
			p := bob.get("/search?query=alice&scope=accessible")
			must(t, p, 200, "party is on friday", "sailing", "score")
			mustNot(t, p, "vault code")
			p = bob.get("/search?query=alice&scope=own")
			mustNot(t, p, "vault code", "party")
			must(t, alice.get("/search?query=vault+code"), 200, "vault code")
			must(t, bob.get("/personas"), 200, `<label for="user">User</label>`)
			p = bob.post("/personas", url.Values{"user": {"alice"}, "question": {"What does alice like to do?"}})
			must(t, p, 200, "Answer", "offline fallback", "sailing")
			mustNot(t, p, "vault code")
			must(t, bob.post("/personas", url.Values{"user": {"nobody-here"}, "question": {"hi"}}), http.StatusUnprocessableEntity, "No such user")
		})

		t.Run("delete with confirmation", func(t *testing.T) {
			must(t, alice.get("/memories/"+shared+"/delete"), 200, "Confirm", "party")
			must(t, alice.post("/memories/"+shared+"/delete", nil), http.StatusSeeOther)
			must(t, alice.get("/memories/"+shared), http.StatusNotFound)
		})

		t.Run("bulk make private and delete, with a confirmation step", func(t *testing.T) {
			p := alice.post("/memories/bulk", url.Values{"id": {public}, "action": {"private"}})
			must(t, p, 200, "Make these 1 memories private", "Confirm")
			must(t, alice.get("/memories/"+public), 200, "<dd>public</dd>") // nothing before Confirm
			must(t, alice.post("/memories/bulk/confirm", url.Values{"id": {public}, "action": {"private"}}), http.StatusSeeOther)
			must(t, alice.get("/memories/"+public), 200, "<dd>private</dd>")
			p = alice.post("/memories/bulk", url.Values{"id": {public, private}, "action": {"delete"}})
			must(t, p, 200, "Delete these 2 memories", "vault code")
			must(t, alice.post("/memories/bulk/confirm", url.Values{"id": {public, private}, "action": {"delete"}}), http.StatusSeeOther)
			must(t, alice.get("/memories/"+private), http.StatusNotFound)
			if p := alice.post("/memories/bulk", url.Values{"action": {"delete"}}); p.Status != http.StatusSeeOther {
				t.Fatalf("bulk with nothing selected: %d", p.Status)
			}
		})

		t.Run("account: export, import, password", func(t *testing.T) {
			must(t, alice.get("/account"), 200, "Current password", "Export", "Import", "Delete account")
			p := alice.get("/account/export")
			must(t, p, 200, `"text":"filler a"`)
			if ct := p.Header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Fatalf("export content type %q", ct)
			}
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			fw, _ := mw.CreateFormFile("file", "memories.jsonl")
			fw.Write([]byte(`{"text":"imported one","permission":"public"}` + "\n" + `not json` + "\n" + `{"text":"imported two","permission":"shared","shared_with":["bob"]}` + "\n"))
			mw.Close()
			req, _ := http.NewRequest(http.MethodPost, e.URL+"/account/import", &body)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			must(t, alice.do(req), http.StatusSeeOther)
			must(t, alice.get("/account"), 200, "Imported 2 memories", "line 2: not a memory")
			must(t, bob.get("/search?query=imported+two"), 200, "imported two")
			must(t, alice.post("/account/password", url.Values{"current_password": {"nope"}, "new_password": {"new-password-1"}}), http.StatusUnprocessableEntity, "not your current password")
			must(t, alice.post("/account/password", url.Values{"current_password": {"password-alice"}, "new_password": {"new-password-1"}}), http.StatusSeeOther)
			must(t, e.browser().post("/login", url.Values{"username": {"alice"}, "password": {"new-password-1"}}), http.StatusSeeOther)
		})

		t.Run("oauth start and callback errors are pages", func(t *testing.T) {
			p := bob.post("/connect/oauth", nil)
			must(t, p, http.StatusSeeOther)
			loc, err := url.Parse(p.Location)
			if err != nil || !strings.HasPrefix(p.Location, e.picard.URL+"/authorize") || loc.Query().Get("code_challenge_method") != "S256" || loc.Query().Get("state") == "" {
				t.Fatalf("authorize redirect: %s", p.Location)
			}
			must(t, bob.get("/oauth/callback?code=x&state=forged"), http.StatusBadRequest, "does not match")
			must(t, bob.get("/oauth/callback?error=access_denied&state=x"), http.StatusBadRequest, "You declined")
		})

		t.Run("refresh is transparent; a refused refresh asks to reconnect", func(t *testing.T) {
			ctx := context.Background()
			u, _ := e.app.store.UserByUsername(ctx, "bob")
			c, _ := e.app.store.Connection(ctx, u.ID)
			old := c.AccessToken
			c.Expiry = time.Now().Add(-time.Minute)
			if err := e.app.store.SaveConnection(ctx, c); err != nil {
				t.Fatal(err)
			}
			// Eight pages at once with an expired token: one refresh, no
			// replayed refresh token (Picard would revoke the whole family).
			var wg sync.WaitGroup
			statuses := make([]int, 8)
			for i := range statuses {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodGet, e.URL+"/memories", nil)
					resp, err := bob.http.Do(req)
					if err == nil {
						statuses[i] = resp.StatusCode
						resp.Body.Close()
					}
				}()
			}
			wg.Wait()
			for i, st := range statuses {
				if st != http.StatusOK {
					t.Fatalf("parallel request %d during refresh: %d", i, st)
				}
			}
			c2, _ := e.app.store.Connection(ctx, u.ID)
			if c2.AccessToken == old || c2.RefreshToken == c.RefreshToken || c2.NeedsReconnect {
				t.Fatal("tokens were not refreshed cleanly")
			}
			must(t, bob.get("/memories"), 200)
			c2.RefreshToken, c2.Expiry = "revoked-or-bogus", time.Now().Add(-time.Minute)
			if err := e.app.store.SaveConnection(ctx, c2); err != nil {
				t.Fatal(err)
			}
			p := bob.get("/memories")
			if p.Status != http.StatusSeeOther || p.Location != "/connect" {
				t.Fatalf("refused refresh: %d %s", p.Status, p.Location)
			}
			must(t, bob.get("/connect"), 200, "expired or was revoked", "Connect to Picard")
			bob.connect()
			must(t, bob.get("/memories"), 200)
		})

		t.Run("a lost secret key asks to reconnect instead of failing", func(t *testing.T) {
			seal := e.app.store.seal
			other, err := LoadSealer(Config{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			e.app.store.seal = other
			p := bob.get("/memories")
			if p.Status != http.StatusSeeOther || p.Location != "/connect" {
				t.Fatalf("undecryptable tokens: %d %s", p.Status, p.Location)
			}
			must(t, bob.get("/connect"), 200, "expired or was revoked")
			e.app.store.seal = seal
		})

		t.Run("disconnect revokes at Picard", func(t *testing.T) {
			ctx := context.Background()
			u, _ := e.app.store.UserByUsername(ctx, "bob")
			c, _ := e.app.store.Connection(ctx, u.ID)
			must(t, bob.post("/connect/disconnect", nil), http.StatusSeeOther)
			if _, err := e.app.store.Connection(ctx, u.ID); err == nil {
				t.Fatal("tokens still stored")
			}
			if _, err := e.app.picard.Refresh(ctx, c.RefreshToken); err == nil {
				t.Fatal("refresh token still works at Picard after Disconnect")
			}
		})

		t.Run("cross-origin POST is refused and changes nothing", func(t *testing.T) {
			alice.get("/memories") // consumes any flash message
			before := alice.get("/memories")
			req, _ := http.NewRequest(http.MethodPost, e.URL+"/memories/new", strings.NewReader(url.Values{"text": {"forged by evil site"}, "permission": {"public"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			req.Header.Set("Origin", "https://evil.example")
			must(t, alice.do(req), http.StatusForbidden)
			req, _ = http.NewRequest(http.MethodPost, e.URL+"/account/delete/confirm", nil)
			req.Header.Set("Origin", "https://evil.example")
			must(t, alice.do(req), http.StatusForbidden)
			after := alice.get("/memories")
			mustNot(t, after, "forged by evil site")
			if before.Body != after.Body {
				t.Fatal("memories changed after a refused cross-origin POST")
			}
		})

		t.Run("no secret or memory text in plaintext in the database", func(t *testing.T) {
			ctx := context.Background()
			u, _ := e.app.store.UserByUsername(ctx, "alice")
			c, err := e.app.store.Connection(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			cr, _ := e.app.credentials(ctx)
			secrets := []string{c.AccessToken, c.RefreshToken, cr.Secret, "password-alice", "new-password-1", "password-bob", "sailing", "vault code", "filler", "imported one"}
			for _, dump := range dumpDB(t, e) {
				for _, s := range secrets {
					if bytes.Contains(dump, []byte(s)) {
						t.Fatalf("%q found in plaintext in the client database", s)
					}
				}
			}
		})

		t.Run("delete account", func(t *testing.T) {
			must(t, alice.post("/account/delete", nil), 200, "Confirm")
			p := alice.post("/account/delete/confirm", nil)
			if p.Status != http.StatusSeeOther || p.Location != "/signup" {
				t.Fatalf("delete account: %d %s", p.Status, p.Location)
			}
			must(t, e.browser().post("/login", url.Values{"username": {"alice"}, "password": {"new-password-1"}}), http.StatusUnauthorized)
		})
	})
}

// dumpDB returns the raw bytes of the database: every SQLite file (main,
// WAL) or, on PostgreSQL, every row of every table as text.
func dumpDB(t *testing.T, e *env) [][]byte {
	t.Helper()
	if !e.app.db.Postgres {
		if _, err := e.app.db.Exec("PRAGMA wal_checkpoint(FULL)"); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(e.app.db.Path + "*")
		var out [][]byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		if len(out) == 0 {
			t.Fatal("no database file")
		}
		return out
	}
	var out [][]byte
	for _, table := range []string{"users", "connections", "settings", "sessions"} {
		rows, err := e.app.db.Query("SELECT CAST(t.* AS TEXT) FROM " + table + " t")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, []byte(s))
		}
		rows.Close()
	}
	return out
}
