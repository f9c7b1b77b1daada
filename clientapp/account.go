package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// MaxImportBytes bounds an import file.
const MaxImportBytes = 5 << 20

func (a *App) account(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "account.html", &templateData{Title: "Account"})
}

func (a *App) accountPassword(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	errs := map[string]string{}
	if !CheckPassword(r.PostFormValue("current_password"), u.PasswordHash) {
		errs["current_password"] = "That is not your current password."
	}
	pw := r.PostFormValue("new_password")
	if len(pw) < 8 || len(pw) > 256 {
		errs["new_password"] = "Use 8 to 256 characters."
	}
	if len(errs) > 0 {
		a.render(w, r, http.StatusUnprocessableEntity, "account.html", &templateData{Title: "Account", Errors: errs})
		return
	}
	hash, err := HashPassword(pw)
	if err == nil {
		err = a.store.SetPassword(r.Context(), u.ID, hash)
	}
	if err == nil {
		err = a.sessions.RenewToken(r.Context())
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(r, "Password changed.")
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// exportLine is one memory in an export file.
type exportLine struct {
	Text             string   `json:"text"`
	Permission       string   `json:"permission"`
	SharedWith       []string `json:"shared_with,omitempty"`        // usernames
	SharedWithGroups []string `json:"shared_with_groups,omitempty"` // group names
	ExpirationDate   *string  `json:"expiration_date,omitempty"`
	Created          string   `json:"created,omitempty"`
}

// accountExport downloads every memory as JSON Lines (sharing by name, so
// the file can be imported elsewhere).
func (a *App) accountExport(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	var all []*Memory
	cursor := ""
	for {
		page, next, err := a.memoryPage(r.Context(), u, map[string]any{"limit": 100, "sort": "oldest", "include_expired": true}, cursor)
		if err != nil {
			a.picardError(w, r, err)
			return
		}
		all = append(all, page...)
		if cursor = next; cursor == "" || len(all) > 100000 {
			break
		}
	}
	if err := a.fillNames(r.Context(), u, all); err != nil {
		a.picardError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="memories-%s.jsonl"`, time.Now().UTC().Format("2006-01-02")))
	enc := json.NewEncoder(w)
	for _, m := range all {
		_ = enc.Encode(exportLine{Text: m.Text, Permission: m.Permission, SharedWith: m.SharedNames, SharedWithGroups: m.SharedGroupNames,
			ExpirationDate: m.ExpirationDate, Created: m.Created})
	}
}

// accountImport stores each line of an export file as a new memory.
func (a *App) accountImport(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	r.Body = http.MaxBytesReader(w, r.Body, MaxImportBytes+1<<16)
	file, _, err := r.FormFile("file")
	if err != nil {
		a.render(w, r, http.StatusUnprocessableEntity, "account.html", &templateData{Title: "Account",
			Errors: map[string]string{"file": "Choose a .jsonl file exported from here (at most 5 MB)."}})
		return
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	imported, line := 0, 0
	var problems []string
	for sc.Scan() {
		line++
		raw := strings.TrimSpace(sc.Text())
		if raw == "" {
			continue
		}
		var l exportLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil || l.Text == "" {
			problems = append(problems, fmt.Sprintf("line %d: not a memory", line))
			continue
		}
		if l.Permission == "" {
			l.Permission = "private"
		}
		args := map[string]any{"text": l.Text, "permission": l.Permission}
		users, unknown, err := a.resolve(r.Context(), u, "users", l.SharedWith)
		if err == nil && len(unknown) == 0 {
			var groups []string
			groups, unknown, err = a.resolve(r.Context(), u, "groups", l.SharedWithGroups)
			args["shared_with"], args["shared_with_groups"] = users, groups
		}
		if err == nil && len(unknown) > 0 {
			problems = append(problems, fmt.Sprintf("line %d: unknown %s", line, strings.Join(unknown, ", ")))
			continue
		}
		if l.ExpirationDate != nil && *l.ExpirationDate != "" {
			args["expiration_date"] = strings.Replace(*l.ExpirationDate, " ", "T", 1)
		}
		if err == nil {
			err = a.call(r.Context(), u, "submit_memory", args, nil)
		}
		var te *ToolError
		if errors.As(err, &te) {
			problems = append(problems, fmt.Sprintf("line %d: %s", line, te.Msg))
			continue
		}
		if err != nil {
			a.picardError(w, r, err)
			return
		}
		imported++
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, "the file could not be read to the end: "+err.Error())
	}
	msg := fmt.Sprintf("Imported %d memories.", imported)
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		msg += " Skipped: " + strings.Join(problems, "; ") + "."
	}
	a.flash(r, msg)
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

func (a *App) accountDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "confirm.html", &templateData{Title: "Delete account?", Data: confirmData{
		Question: "Delete your account here? Your memories stay in Picard; this app forgets you and disconnects.", Action: "/account/delete/confirm"}})
}

func (a *App) accountDelete(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	if c, err := a.store.Connection(r.Context(), u.ID); err == nil && c.RefreshToken != "" {
		if rerr := a.picard.Revoke(r.Context(), c.RefreshToken); rerr != nil {
			a.log.Warn("revoke on account deletion failed", "error", rerr)
		}
	}
	if err := a.store.DeleteUser(r.Context(), u.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.sessions.Destroy(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/signup", http.StatusSeeOther)
}
