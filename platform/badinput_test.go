package platform_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/tests"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
)

func jsonBody(v any) *strings.Reader {
	if s, ok := v.(string); ok {
		return strings.NewReader(s)
	}
	b, _ := json.Marshal(v)
	return strings.NewReader(string(b))
}

// rowCounts is what must not change when input is refused.
func rowCounts(t testing.TB, app *tests.TestApp) string {
	var parts []string
	for _, c := range []string{pb_migrations.Memories, pb_migrations.Users, pb_migrations.OAuthClients, pb_migrations.OAuthGrants, pb_migrations.Groups} {
		var n int
		if err := app.DB().Select("count(*)").From(c).Row(&n); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s=%d", c, n))
	}
	return strings.Join(parts, " ")
}

// TestBadInput: every tool and endpoint refuses bad input with a 4xx whose
// message names the field, and stores nothing.
func TestBadInput(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	su := s.SuperuserToken()
	client := s.RegisterClient(su)
	alice := s.UserToken(client, "alice")
	bob := s.UserToken(client, "bob")
	mine := submit(t, s, alice, map[string]any{"text": "a memory to aim bad updates at"})
	before := rowCounts(t, s.App)

	auth := map[string]string{"Authorization": "Bearer " + alice.Access, "Content-Type": "application/json"}
	long := strings.Repeat("é", 10_001)
	type tc struct {
		name   string
		tool   string
		data   any
		status int
		field  string
	}
	toolCases := []tc{
		{"submit empty text", "submit_memory", map[string]any{"text": ""}, 400, "text"},
		{"submit blank text", "submit_memory", map[string]any{"text": " \n\t "}, 400, "text"},
		{"submit missing text", "submit_memory", map[string]any{"permission": "public"}, 400, "text"},
		{"submit oversized text", "submit_memory", map[string]any{"text": long}, 400, "text"},
		{"submit text wrong type", "submit_memory", map[string]any{"text": 42}, 400, "text"},
		{"submit unknown permission", "submit_memory", map[string]any{"text": "x", "permission": "friends"}, 400, "permission"},
		{"submit permission wrong type", "submit_memory", map[string]any{"text": "x", "permission": true}, 400, "permission"},
		{"submit malformed shared uuid", "submit_memory", map[string]any{"text": "x", "permission": "shared", "shared_with": []string{"bob"}}, 400, "shared_with"},
		{"submit unknown shared user", "submit_memory", map[string]any{"text": "x", "permission": "shared", "shared_with": []string{"6f1d6b7e-1b7a-4c1e-9d2a-3f4e5a6b7c8d"}}, 400, "shared_with"},
		{"submit shared_with wrong type", "submit_memory", map[string]any{"text": "x", "permission": "shared", "shared_with": bob.ID}, 400, "shared_with"},
		{"submit shared with nobody", "submit_memory", map[string]any{"text": "x", "permission": "shared"}, 400, "shared_with"},
		{"submit private but shared", "submit_memory", map[string]any{"text": "x", "permission": "private", "shared_with": []string{bob.ID}}, 400, "shared_with"},
		{"submit malformed group uuid", "submit_memory", map[string]any{"text": "x", "permission": "shared", "shared_with_groups": []string{"nope"}}, 400, "shared_with_groups"},
		{"submit bad date", "submit_memory", map[string]any{"text": "x", "expiration_date": "next tuesday"}, 400, "expiration_date"},
		{"submit date without zone", "submit_memory", map[string]any{"text": "x", "expiration_date": "2031-01-01T00:00:00"}, 400, "expiration_date"},
		{"submit past date", "submit_memory", map[string]any{"text": "x", "expiration_date": "2001-01-01T00:00:00Z"}, 400, "expiration_date"},
		{"submit unknown argument", "submit_memory", map[string]any{"text": "x", "colour": "red"}, 400, "colour"},
		{"submit data not an object", "submit_memory", []string{"x"}, 400, ""},
		{"update missing id", "update_memory", map[string]any{"text": "x"}, 400, "memory_id"},
		{"update malformed id", "update_memory", map[string]any{"memory_id": "123", "text": "x"}, 400, "memory_id"},
		{"update id wrong type", "update_memory", map[string]any{"memory_id": 123, "text": "x"}, 400, "memory_id"},
		{"update empty text", "update_memory", map[string]any{"memory_id": mine.ID, "text": ""}, 400, "text"},
		{"update oversized text", "update_memory", map[string]any{"memory_id": mine.ID, "text": long}, 400, "text"},
		{"update bad date", "update_memory", map[string]any{"memory_id": mine.ID, "expiration_date": "31/12/2030"}, 400, "expiration_date"},
		{"update nothing to change", "update_memory", map[string]any{"memory_id": mine.ID}, 400, "text"},
		{"delete missing id", "delete_memory", map[string]any{}, 400, "memory_id"},
		{"delete malformed id", "delete_memory", map[string]any{"memory_id": "../../etc"}, 400, "memory_id"},
		{"delete uppercase uuid", "delete_memory", map[string]any{"memory_id": strings.ToUpper(mine.ID)}, 400, "memory_id"},
		{"list negative limit", "get_memories", map[string]any{"limit": -1}, 400, "limit"},
		{"list limit too large", "get_memories", map[string]any{"limit": 101}, 400, "limit"},
		{"list limit wrong type", "get_memories", map[string]any{"limit": "ten"}, 400, "limit"},
		{"list limit fractional", "get_memories", map[string]any{"limit": 2.5}, 400, "limit"},
		{"list bad cursor", "get_memories", map[string]any{"cursor": "!!"}, 400, "cursor"},
		{"list unknown permission", "get_memories", map[string]any{"permission": "secret"}, 400, "permission"},
		{"list bad sort", "get_memories", map[string]any{"sort": "random"}, 400, "sort"},
		{"list include_expired wrong type", "get_memories", map[string]any{"include_expired": "yes"}, 400, "include_expired"},
		{"query empty", "query_memory", map[string]any{"query": ""}, 400, "query"},
		{"query oversized", "query_memory", map[string]any{"query": strings.Repeat("a", 2001)}, 400, "query"},
		{"query wrong type", "query_memory", map[string]any{"query": []string{"a"}}, 400, "query"},
		{"query limit too large", "query_memory", map[string]any{"query": "a", "limit": 51}, 400, "limit"},
		{"query bad scope", "query_memory", map[string]any{"query": "a", "scope": "everyone"}, 400, "scope"},
		{"retrieve alias bad limit", "retrieve_memories", map[string]any{"query": "a", "limit": 0.5}, 400, "limit"},
		{"modify missing permission", "modify_permissions", map[string]any{"memory_id": mine.ID}, 400, "permission"},
		{"modify unknown permission", "modify_permissions", map[string]any{"memory_id": mine.ID, "permission": "world"}, 400, "permission"},
		{"modify malformed id", "modify_permissions", map[string]any{"memory_id": "x", "permission": "public"}, 400, "memory_id"},
		{"modify share with self", "modify_permissions", map[string]any{"memory_id": mine.ID, "permission": "shared", "shared_with": []string{alice.ID}}, 400, "shared_with"},
		{"modify malformed share", "modify_permissions", map[string]any{"memory_id": mine.ID, "permission": "shared", "shared_with": []string{"x"}}, 400, "shared_with"},
		{"persona missing user", "query_user", map[string]any{"query": "hi"}, 400, "user_id"},
		{"persona malformed user", "query_user", map[string]any{"user_id": "alice", "query": "hi"}, 400, "user_id"},
		{"persona empty question", "query_user", map[string]any{"user_id": bob.ID, "query": "  "}, 400, "query"},
		{"persona question wrong type", "query_user", map[string]any{"user_id": bob.ID, "query": 7}, 400, "query"},
		{"persona oversized question", "query_user", map[string]any{"user_id": bob.ID, "query": strings.Repeat("q", 2001)}, 400, "query"},
		{"unknown tool", "drop_tables", map[string]any{}, 400, "tool"},
		{"missing tool", "", map[string]any{}, 400, "tool"},
	}
	var scenarios []tests.ApiScenario
	for _, c := range toolCases {
		sc := tests.ApiScenario{
			Name: c.name, Method: http.MethodPost, URL: "/api/tools",
			Body: jsonBody(map[string]any{"tool": c.tool, "data": c.data}), Headers: auth,
			ExpectedStatus: c.status, ExpectedContent: []string{`"error":"invalid_argument"`},
		}
		if c.field != "" {
			sc.ExpectedContent = append(sc.ExpectedContent, `"field":"`+c.field+`"`, `"message":"`+c.field+`: `)
		}
		scenarios = append(scenarios, sc)
	}
	suHeaders := map[string]string{"Authorization": su, "Content-Type": "application/json"}
	register := func(name string, body any, field string) tests.ApiScenario {
		return tests.ApiScenario{Name: name, Method: http.MethodPost, URL: "/api/admin/clients/register", Body: jsonBody(body), Headers: suHeaders,
			ExpectedStatus: 400, ExpectedContent: []string{`"field":"` + field + `"`}}
	}
	userToken := func(name string, body map[string]any, field string) tests.ApiScenario {
		full := map[string]any{"client_id": client.ID, "client_secret": client.Secret, "username": "newbie", "email": "newbie@picard.test", "create_if_not_exists": true}
		for k, v := range body {
			if v == nil {
				delete(full, k)
			} else {
				full[k] = v
			}
		}
		return tests.ApiScenario{Name: name, Method: http.MethodPost, URL: "/api/user-tokens/user-token", Body: jsonBody(full),
			Headers: map[string]string{"Content-Type": "application/json"}, ExpectedStatus: 400, ExpectedContent: []string{`"field":"` + field + `"`}}
	}
	scenarios = append(scenarios,
		tests.ApiScenario{Name: "tools malformed json", Method: http.MethodPost, URL: "/api/tools", Body: strings.NewReader(`{"tool": "submit_memory", "data": {"text": "x"`), Headers: auth, ExpectedStatus: 400, ExpectedContent: []string{"JSON"}},
		tests.ApiScenario{Name: "tools body is an array", Method: http.MethodPost, URL: "/api/tools", Body: strings.NewReader(`[1,2]`), Headers: auth, ExpectedStatus: 400, ExpectedContent: []string{"JSON object"}},
		register("register missing name", map[string]any{"redirect_uris": []string{"https://app.example/cb"}}, "name"),
		register("register javascript uri", map[string]any{"name": "x", "redirect_uris": []string{"javascript:alert(1)"}}, "redirect_uris"),
		register("register plain http uri", map[string]any{"name": "x", "redirect_uris": []string{"http://app.example/cb"}}, "redirect_uris"),
		register("register fragment uri", map[string]any{"name": "x", "redirect_uris": []string{"https://app.example/cb#frag"}}, "redirect_uris"),
		register("register unknown scope", map[string]any{"name": "x", "redirect_uris": []string{"https://app.example/cb"}, "scopes": []string{"admin"}}, "scopes"),
		register("register scopes wrong type", map[string]any{"name": "x", "scopes": "memories:read"}, "scopes"),
		register("register confidential wrong type", map[string]any{"name": "x", "confidential": "yes"}, "confidential"),
		userToken("user-token missing client", map[string]any{"client_id": nil}, "client_id"),
		userToken("user-token malformed client", map[string]any{"client_id": "abc"}, "client_id"),
		userToken("user-token missing secret", map[string]any{"client_secret": nil}, "client_secret"),
		userToken("user-token bad email", map[string]any{"email": "not-an-email"}, "email"),
		userToken("user-token bad username", map[string]any{"username": "a b"}, "username"),
		userToken("user-token create flag wrong type", map[string]any{"create_if_not_exists": "true"}, "create_if_not_exists"),
		tests.ApiScenario{Name: "token missing grant_type", Method: http.MethodPost, URL: "/token",
			Body: strings.NewReader("client_id=" + client.ID + "&client_secret=" + client.Secret), Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			ExpectedStatus: 400, ExpectedContent: []string{`"error":"invalid_request"`, "grant_type"}},
		tests.ApiScenario{Name: "token unsupported grant_type", Method: http.MethodPost, URL: "/token",
			Body: strings.NewReader("grant_type=password&client_id=" + client.ID + "&client_secret=" + client.Secret), Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			ExpectedStatus: 400, ExpectedContent: []string{`"error":"unsupported_grant_type"`}},
	)
	for _, sc := range scenarios {
		sc.TestAppFactory = func(testing.TB) *tests.TestApp { return s.App }
		sc.DisableTestAppCleanup = true
		sc.AfterTestFunc = func(t testing.TB, app *tests.TestApp, _ *http.Response) {
			if after := rowCounts(t, app); after != before {
				t.Errorf("refused input changed stored data:\nbefore %s\nafter  %s", before, after)
			}
		}
		sc.Test(t)
	}
	// the memory aimed at is untouched
	if got := list(t, s, alice, nil); len(got) != 1 || got[0].Text != mine.Text {
		t.Fatalf("memory changed by refused updates: %+v", got)
	}
}
