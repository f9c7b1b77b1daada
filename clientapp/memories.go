package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
)

// MaxTextLen is Picard's limit on a memory's text.
const MaxTextLen = 10000

type listFilter struct {
	Permission, From, To, Sort, Cursor string
	IncludeExpired                     bool
}

type listData struct {
	Filter      listFilter
	Permissions []Permission
	Memories    []*Memory
	NextURL     string
}

func parseDay(s string) (time.Time, bool) {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	return t, err == nil
}

func (a *App) memoriesList(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	q := r.URL.Query()
	f := listFilter{Permission: q.Get("permission"), From: q.Get("from"), To: q.Get("to"), Sort: q.Get("sort"), Cursor: q.Get("cursor"), IncludeExpired: q.Get("include_expired") != ""}
	if f.Sort != "oldest" {
		f.Sort = "newest"
	}
	errs := map[string]string{}
	from, hasFrom := parseDay(f.From)
	to, hasTo := parseDay(f.To)
	if f.From != "" && !hasFrom {
		errs["from"] = "Use a date like 2030-01-31."
	}
	if f.To != "" && !hasTo {
		errs["to"] = "Use a date like 2030-01-31."
	}
	perms, err := a.permissions(r.Context(), u)
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	d := listData{Filter: f, Permissions: perms, Memories: []*Memory{}}
	if len(errs) > 0 {
		a.render(w, r, http.StatusUnprocessableEntity, "memories.html", &templateData{Title: "Memories", Data: d, Errors: errs, Connected: true})
		return
	}
	// Picard pages by cursor; the date range is applied here, reading on
	// (at most 10 pages) until the page is full or the range is passed.
	cursor := f.Cursor
	const pageSize = 20
	for range 10 {
		args := map[string]any{"limit": pageSize, "sort": f.Sort, "include_expired": f.IncludeExpired}
		if f.Permission != "" {
			args["permission"] = f.Permission
		}
		page, next, err := a.memoryPage(r.Context(), u, args, cursor)
		if err != nil {
			a.picardError(w, r, err)
			return
		}
		passed := false
		for _, m := range page {
			c, _ := time.Parse(time.RFC3339Nano, strings.Replace(m.Created, " ", "T", 1))
			if hasFrom && c.Before(from) {
				passed = passed || f.Sort == "newest"
				continue
			}
			if hasTo && !c.Before(to.Add(24*time.Hour)) {
				passed = passed || f.Sort == "oldest"
				continue
			}
			d.Memories = append(d.Memories, m)
		}
		cursor = next
		if cursor == "" || passed || len(d.Memories) >= pageSize || (!hasFrom && !hasTo) {
			break
		}
	}
	if cursor != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("cursor", cursor)
		d.NextURL = "/memories?" + nq.Encode()
	}
	if err := a.fillNames(r.Context(), u, d.Memories); err != nil {
		a.picardError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "memories.html", &templateData{Title: "Memories", Data: d, Connected: true})
}

type memoryForm struct {
	ID, Text, Permission, ShareWith, ShareGroups, Expires string
	Permissions                                           []Permission
}

func (a *App) memoryNewForm(w http.ResponseWriter, r *http.Request) {
	perms, err := a.permissions(r.Context(), userFrom(r))
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "memory_form.html", &templateData{Title: "New memory", Connected: true,
		Form: memoryForm{Permission: "private", Permissions: perms}})
}

func readMemoryForm(r *http.Request) memoryForm {
	return memoryForm{
		Text: strings.TrimSpace(r.PostFormValue("text")), Permission: r.PostFormValue("permission"),
		ShareWith: r.PostFormValue("share_with"), ShareGroups: r.PostFormValue("share_groups"), Expires: strings.TrimSpace(r.PostFormValue("expires")),
	}
}

// checkMemoryForm validates the form and resolves names; args are the
// tool arguments (text, permission, shared_with, shared_with_groups,
// expiration_date).
func (a *App) checkMemoryForm(r *http.Request, f *memoryForm) (map[string]any, map[string]string, error) {
	u := userFrom(r)
	errs := map[string]string{}
	if f.Text == "" {
		errs["text"] = "Write something to remember."
	} else if utf8.RuneCountInString(f.Text) > MaxTextLen {
		errs["text"] = fmt.Sprintf("At most %d characters (this has %d).", MaxTextLen, utf8.RuneCountInString(f.Text))
	}
	known := false
	for _, p := range f.Permissions {
		known = known || p.Name == f.Permission
	}
	if !known {
		errs["permission"] = "Choose one of the listed permissions."
	}
	args := map[string]any{"text": f.Text, "permission": f.Permission, "expiration_date": ""}
	if f.Expires != "" {
		day, ok := parseDay(f.Expires)
		switch {
		case !ok:
			errs["expires"] = "Use a date like 2030-01-31."
		case !day.Add(24 * time.Hour).After(time.Now()):
			errs["expires"] = "Choose a date in the future."
		default:
			args["expiration_date"] = day.Add(24*time.Hour - time.Second).UTC().Format(time.RFC3339)
		}
	}
	users, unknown, err := a.resolve(r.Context(), u, "users", splitNames(f.ShareWith))
	if err != nil {
		return nil, nil, err
	}
	if len(unknown) > 0 {
		errs["share_with"] = "No such user: " + strings.Join(unknown, ", ") + "."
	}
	groups, unknownG, err := a.resolve(r.Context(), u, "groups", splitNames(f.ShareGroups))
	if err != nil {
		return nil, nil, err
	}
	if len(unknownG) > 0 {
		errs["share_groups"] = "No such group: " + strings.Join(unknownG, ", ") + "."
	}
	args["shared_with"], args["shared_with_groups"] = users, groups
	return args, errs, nil
}

// toolFieldErrors places Picard's argument errors next to the field.
func toolFieldErrors(err error) (map[string]string, bool) {
	var te *ToolError
	if !errors.As(err, &te) || te.NotFound() {
		return nil, false
	}
	field := map[string]string{"text": "text", "permission": "permission", "shared_with": "share_with",
		"shared_with_groups": "share_groups", "expiration_date": "expires"}[te.Field()]
	if field == "" {
		field = "text"
	}
	return map[string]string{field: "Picard says: " + te.Msg}, true
}

func (a *App) memoryCreate(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	f := readMemoryForm(r)
	var err error
	if f.Permissions, err = a.permissions(r.Context(), u); err != nil {
		a.picardError(w, r, err)
		return
	}
	args, errs, err := a.checkMemoryForm(r, &f)
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	if len(errs) == 0 {
		if args["expiration_date"] == "" {
			delete(args, "expiration_date")
		}
		var m Memory
		err = a.call(r.Context(), u, "submit_memory", args, &m)
		if fe, ok := toolFieldErrors(err); ok {
			errs = fe
		} else if err != nil {
			a.picardError(w, r, err)
			return
		} else {
			a.flash(r, "Memory saved.")
			http.Redirect(w, r, "/memories/"+m.ID, http.StatusSeeOther)
			return
		}
	}
	a.render(w, r, http.StatusUnprocessableEntity, "memory_form.html", &templateData{Title: "New memory", Connected: true, Form: f, Errors: errs})
}

func (a *App) memoryShow(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	m, err := a.ownMemory(r.Context(), u, chi.URLParam(r, "id"))
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	if err := a.fillNames(r.Context(), u, []*Memory{m}); err != nil {
		a.picardError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "memory.html", &templateData{Title: "Memory", Connected: true, Data: m})
}

func (a *App) memoryEditForm(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	m, err := a.ownMemory(r.Context(), u, chi.URLParam(r, "id"))
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	perms, err := a.permissions(r.Context(), u)
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	if err := a.fillNames(r.Context(), u, []*Memory{m}); err != nil {
		a.picardError(w, r, err)
		return
	}
	f := memoryForm{ID: m.ID, Text: m.Text, Permission: m.Permission, ShareWith: strings.Join(m.SharedNames, ", "),
		ShareGroups: strings.Join(m.SharedGroupNames, ", "), Expires: m.Expires(), Permissions: perms}
	a.render(w, r, http.StatusOK, "memory_form.html", &templateData{Title: "Edit memory", Connected: true, Form: f})
}

func (a *App) memoryUpdate(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	m, err := a.ownMemory(r.Context(), u, chi.URLParam(r, "id"))
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	f := readMemoryForm(r)
	f.ID = m.ID
	if f.Permissions, err = a.permissions(r.Context(), u); err != nil {
		a.picardError(w, r, err)
		return
	}
	args, errs, err := a.checkMemoryForm(r, &f)
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	if len(errs) == 0 {
		// Two tools, no transaction: the sharing change (the one Picard's
		// policies may refuse) goes first, so a refusal changes nothing.
		err = a.call(r.Context(), u, "modify_permissions", map[string]any{"memory_id": m.ID, "permission": args["permission"],
			"shared_with": args["shared_with"], "shared_with_groups": args["shared_with_groups"]}, nil)
		if err == nil {
			err = a.call(r.Context(), u, "update_memory", map[string]any{"memory_id": m.ID, "text": args["text"], "expiration_date": args["expiration_date"]}, nil)
		}
		if fe, ok := toolFieldErrors(err); ok {
			errs = fe
		} else if err != nil {
			a.picardError(w, r, err)
			return
		} else {
			a.flash(r, "Memory updated.")
			http.Redirect(w, r, "/memories/"+m.ID, http.StatusSeeOther)
			return
		}
	}
	a.render(w, r, http.StatusUnprocessableEntity, "memory_form.html", &templateData{Title: "Edit memory", Connected: true, Form: f, Errors: errs})
}

type confirmData struct {
	Question, Action, Verb string
	IDs                    []string
	Memories               []*Memory
}

func (a *App) memoryDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	m, err := a.ownMemory(r.Context(), userFrom(r), chi.URLParam(r, "id"))
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "confirm.html", &templateData{Title: "Delete memory?", Connected: true, Data: confirmData{
		Question: "Delete this memory for good?", Action: "/memories/" + m.ID + "/delete", Memories: []*Memory{m}}})
}

func (a *App) memoryDelete(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	m, err := a.ownMemory(r.Context(), u, chi.URLParam(r, "id"))
	if err == nil {
		err = a.call(r.Context(), u, "delete_memory", map[string]any{"memory_id": m.ID}, nil)
	}
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	a.flash(r, "Memory deleted.")
	http.Redirect(w, r, "/memories", http.StatusSeeOther)
}

// memoriesBulk shows what a bulk action will do and asks to confirm.
func (a *App) memoriesBulk(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	if err := r.ParseForm(); err != nil {
		a.render(w, r, http.StatusBadRequest, "error.html", &templateData{Title: "Bad request", Message: "The form could not be read."})
		return
	}
	ids := dedupe(r.PostForm["id"])
	action := r.PostFormValue("action")
	if len(ids) == 0 || (action != "delete" && action != "private") {
		a.flash(r, "Select at least one memory first.")
		http.Redirect(w, r, "/memories", http.StatusSeeOther)
		return
	}
	if len(ids) > 100 {
		ids = ids[:100]
	}
	var ms []*Memory
	for _, id := range ids {
		m, err := a.ownMemory(r.Context(), u, id)
		if err != nil {
			a.picardError(w, r, err)
			return
		}
		ms = append(ms, m)
	}
	q := fmt.Sprintf("Delete these %d memories for good?", len(ms))
	if action == "private" {
		q = fmt.Sprintf("Make these %d memories private (only you can read them)?", len(ms))
	}
	a.render(w, r, http.StatusOK, "confirm.html", &templateData{Title: "Confirm", Connected: true, Data: confirmData{
		Question: q, Action: "/memories/bulk/confirm", Verb: action, IDs: ids, Memories: ms}})
}

func (a *App) memoriesBulkConfirm(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	if err := r.ParseForm(); err != nil {
		a.render(w, r, http.StatusBadRequest, "error.html", &templateData{Title: "Bad request", Message: "The form could not be read."})
		return
	}
	ids := dedupe(r.PostForm["id"])
	action := r.PostFormValue("action")
	if action != "delete" && action != "private" {
		a.notFound(w, r)
		return
	}
	done := 0
	for _, id := range ids {
		m, err := a.ownMemory(r.Context(), u, id)
		if err == nil {
			if action == "delete" {
				err = a.call(r.Context(), u, "delete_memory", map[string]any{"memory_id": m.ID}, nil)
			} else {
				err = a.call(r.Context(), u, "modify_permissions", map[string]any{"memory_id": m.ID, "permission": "private", "shared_with": []string{}, "shared_with_groups": []string{}}, nil)
			}
		}
		if err != nil {
			a.picardError(w, r, err)
			return
		}
		done++
	}
	verb := "Deleted"
	if action == "private" {
		verb = "Made private"
	}
	a.flash(r, fmt.Sprintf("%s %d memories.", verb, done))
	http.Redirect(w, r, "/memories", http.StatusSeeOther)
}
