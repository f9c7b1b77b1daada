package main

import (
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"
)

type dashboardData struct {
	Connected, NeedsReconnect bool
	Total                     int
	More                      bool
	Counts                    []permCount
	Expiring                  []*Memory
}

type permCount struct {
	Name  string
	Count int
}

func (a *App) dashboard(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	d := dashboardData{}
	c, err := a.store.Connection(r.Context(), u.ID)
	if errors.Is(err, ErrNotFound) {
		a.render(w, r, http.StatusOK, "dashboard.html", &templateData{Title: "Dashboard", Data: d})
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if c.NeedsReconnect {
		d.NeedsReconnect = true
		a.render(w, r, http.StatusOK, "dashboard.html", &templateData{Title: "Dashboard", Data: d})
		return
	}
	d.Connected = true
	perms, err := a.permissions(r.Context(), u)
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	counts := map[string]int{}
	for _, p := range perms {
		counts[p.Name] = 0
	}
	soon := time.Now().Add(7 * 24 * time.Hour)
	cursor := ""
	for range 10 { // at most 1000 memories are counted
		page, next, err := a.memoryPage(r.Context(), u, map[string]any{"limit": 100}, cursor)
		if err != nil {
			a.picardError(w, r, err)
			return
		}
		for _, m := range page {
			d.Total++
			counts[m.Permission]++
			if m.ExpirationDate != nil {
				if t, err := time.Parse(time.RFC3339Nano, strings.Replace(*m.ExpirationDate, " ", "T", 1)); err == nil && t.Before(soon) {
					d.Expiring = append(d.Expiring, m)
				}
			}
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	d.More = cursor != ""
	for n, c := range counts {
		d.Counts = append(d.Counts, permCount{n, c})
	}
	sort.Slice(d.Counts, func(i, j int) bool { return d.Counts[i].Name < d.Counts[j].Name })
	a.render(w, r, http.StatusOK, "dashboard.html", &templateData{Title: "Dashboard", Connected: true, Data: d})
}
