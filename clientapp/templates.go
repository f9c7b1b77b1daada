package main

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// templateData is everything a page may show.
type templateData struct {
	Title     string
	User      *User
	Connected bool
	Flash     string
	Message   string
	Form      any
	Errors    map[string]string
	Data      any
}

// Pages is the template cache: one parsed template per page, each with
// the layout.
type Pages struct {
	byName map[string]*template.Template
}

var funcs = template.FuncMap{
	"date": func(s string) string {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC().Format("2006-01-02 15:04")
		}
		if t, err := time.Parse("2006-01-02 15:04:05.000Z", s); err == nil {
			return t.UTC().Format("2006-01-02 15:04")
		}
		return s
	},
	"score": func(f *float64) string {
		if f == nil {
			return ""
		}
		return fmt.Sprintf("%.3f", *f)
	},
	"join": strings.Join,
	"has": func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	},
}

// LoadPages parses every page with the layout.
func LoadPages() (*Pages, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	p := &Pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", base, err)
		}
		p.byName[base] = t
	}
	return p, nil
}

// render writes a page; it fills in the signed-in person and the flash.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, page string, td *templateData) {
	t, ok := a.pages.byName[page]
	if !ok {
		http.Error(w, "no template "+page, http.StatusInternalServerError)
		return
	}
	if td == nil {
		td = &templateData{}
	}
	if td.User == nil {
		td.User = userFrom(r)
	}
	if td.User != nil && td.Flash == "" {
		td.Flash = a.sessions.PopString(r.Context(), "flash")
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", td); err != nil {
		a.log.Error("render", "page", page, "error", err)
		http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (a *App) flash(r *http.Request, msg string) {
	a.sessions.Put(r.Context(), "flash", msg)
}
