package platform_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestOpenAPIDocumentValidates checks /openapi.json against the OpenAPI 3.1
// specification with a validator library, and real responses against the
// document.
func TestOpenAPIDocumentValidates(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	r := s.Do("GET", "/openapi.json", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("/openapi.json: %d", r.Status)
	}
	doc, err := libopenapi.NewDocument(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("version %s", v)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build model: %v", err)
	}
	for _, p := range []string{"/api/tools", "/api/admin/clients/register", "/api/user-tokens/user-token", "/token", "/authorize", "/register", "/revoke", "/introspect"} {
		if _, ok := model.Model.Paths.PathItems.Get(p); !ok {
			t.Errorf("path %s not documented", p)
		}
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s (%s)", e.Message, e.Reason)
		}
	}

	// real requests and responses conform to the document
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	for _, c := range []struct {
		body  string
		valid bool
	}{
		{`{"tool":"submit_memory","data":{"text":"openapi conformance memory","permission":"public"}}`, true},
		{`{"tool":"query_memory","data":{"query":"conformance"}}`, true},
		{`{"tool":"get_memories","data":{}}`, true},
		{`{"tool":"delete_memory","data":{"memory_id":"0b7e6a38-3d5f-4c39-9a43-6f2d1c8e9b10"}}`, true},
		{`{"tool":"submit_memory","data":{"text":""}}`, false},
	} {
		body := c.body
		req, _ := http.NewRequest("POST", s.URL+"/api/tools", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice.Access)
		ok, verrs := v.ValidateHttpRequest(cloneReq(t, req, body))
		if ok != c.valid {
			t.Errorf("request %s: the document says valid=%v, want %v (%v)", body, ok, c.valid, verrs)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if ok, verrs := v.ValidateHttpResponse(cloneReq(t, req, body), resp); !ok {
			for _, e := range verrs {
				t.Errorf("response to %s (%d %s): %s (%s)", body, resp.StatusCode, b, e.Message, e.Reason)
			}
		}
	}
}

func cloneReq(t *testing.T, r *http.Request, body string) *http.Request {
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(strings.NewReader(body))
	return c
}

// TestDocsServedFromBinary: /docs and its assets come from Picard itself.
func TestDocsServedFromBinary(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	page := s.Do("GET", "/docs", nil, nil)
	if page.Status != 200 || !strings.Contains(string(page.Body), `src="/docs/swagger-ui-bundle.js"`) || strings.Contains(string(page.Body), "https://") {
		t.Fatalf("/docs: %d %s", page.Status, page.Body)
	}
	for _, asset := range []string{"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js"} {
		if r := s.Do("GET", asset, nil, nil); r.Status != 200 || len(r.Body) < 20 {
			t.Errorf("%s: %d (%d bytes)", asset, r.Status, len(r.Body))
		}
	}
	if r := s.Do("GET", "/docs/../go.mod", nil, nil); r.Status == 200 && strings.Contains(string(r.Body), "module ") {
		t.Fatal("path traversal out of the docs assets")
	}
}
