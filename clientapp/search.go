package main

import (
	"net/http"
	"strings"
)

type searchForm struct{ Query, Scope string }

func (a *App) search(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	f := searchForm{Query: strings.TrimSpace(r.URL.Query().Get("query")), Scope: r.URL.Query().Get("scope")}
	if f.Scope != "own" {
		f.Scope = "accessible"
	}
	td := &templateData{Title: "Search", Connected: true, Form: f}
	if f.Query == "" {
		if r.URL.Query().Has("query") {
			td.Errors = map[string]string{"query": "Type what to look for."}
		}
		a.render(w, r, http.StatusOK, "search.html", td)
		return
	}
	if len(f.Query) > 2000 {
		td.Errors = map[string]string{"query": "At most 2000 characters."}
		a.render(w, r, http.StatusUnprocessableEntity, "search.html", td)
		return
	}
	var out struct {
		Memories []*Memory `json:"memories"`
	}
	if err := a.call(r.Context(), u, "query_memory", map[string]any{"query": f.Query, "scope": f.Scope, "limit": 20}, &out); err != nil {
		a.picardError(w, r, err)
		return
	}
	if err := a.fillNames(r.Context(), u, out.Memories); err != nil {
		a.picardError(w, r, err)
		return
	}
	td.Data = out.Memories
	a.render(w, r, http.StatusOK, "search.html", td)
}
