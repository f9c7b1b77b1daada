package oauth

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/pocketbase/pocketbase/core"
)

//go:embed templates/pages.html templates/pages.css
var templateFS embed.FS

var (
	pages    = template.Must(template.ParseFS(templateFS, "templates/pages.html"))
	pageCSS  = mustRead("templates/pages.css")
	cssHash  = sha256.Sum256([]byte(pageCSS))
	pageCSP  = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(cssHash[:]) + "'; frame-ancestors 'none'; base-uri 'none'"
	scopeDoc = map[string]string{
		ScopeRead:  "read and search your memories",
		ScopeWrite: "create, change, share and delete your memories",
	}
)

func mustRead(name string) string {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time: cannot fail at run time
	}
	return string(b)
}

type hiddenField struct{ Name, Value string }

type scopeInfo struct{ Name, Description string }

// page is what a template sees.
type page struct {
	Screen, Title, Error, Message string
	Style                         template.CSS
	Action, SwitchURL, CSRF       string
	Hidden                        []hiddenField
	ClientName, RedirectHost      string
	Unverified                    bool
	Scopes                        []scopeInfo
	UserName                      string
	Identifier, Email, Username   string
}

func (s *Server) render(e *core.RequestEvent, status int, p page) error {
	p.Style = template.CSS(pageCSS) //nolint:gosec // our own embedded stylesheet
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "layout", p); err != nil {
		slog.Error("oauth: render page", "screen", p.Screen, "error", err)
		return e.String(http.StatusInternalServerError, "internal error")
	}
	pageHeaders(e.Response.Header())
	return e.HTML(status, buf.String())
}

// errorPage tells the user what went wrong without redirecting anywhere.
func (s *Server) errorPage(e *core.RequestEvent, status int, msg string) error {
	return s.render(e, status, page{Screen: "error", Title: "This sign-in request cannot continue", Message: msg})
}
