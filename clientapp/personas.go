package main

import (
	"net/http"
	"strings"
)

type personaForm struct{ User, Question string }

type personaAnswer struct {
	Answer       string   `json:"answer"`
	Model        string   `json:"model"`
	LLMAnswered  bool     `json:"llm_answered"`
	FallbackNote string   `json:"fallback_note"`
	MemoryIDs    []string `json:"memory_ids"`
	Used         []*Memory
}

func (a *App) personasForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "personas.html", &templateData{Title: "Personas", Connected: true, Form: personaForm{}})
}

func (a *App) personasAsk(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	f := personaForm{User: strings.TrimSpace(r.PostFormValue("user")), Question: strings.TrimSpace(r.PostFormValue("question"))}
	errs := map[string]string{}
	if f.User == "" {
		errs["user"] = "Whose persona? Type a username."
	}
	if f.Question == "" {
		errs["question"] = "Type a question."
	} else if len(f.Question) > 2000 {
		errs["question"] = "At most 2000 characters."
	}
	var ids []string
	if f.User != "" {
		var unknown []string
		var err error
		ids, unknown, err = a.resolve(r.Context(), u, "users", []string{f.User})
		if err != nil {
			a.picardError(w, r, err)
			return
		}
		if len(unknown) > 0 || len(ids) == 0 {
			errs["user"] = "No such user: " + f.User + "."
		}
	}
	if len(errs) > 0 {
		a.render(w, r, http.StatusUnprocessableEntity, "personas.html", &templateData{Title: "Personas", Connected: true, Form: f, Errors: errs})
		return
	}
	var ans personaAnswer
	if err := a.call(r.Context(), u, "query_user", map[string]any{"user_id": ids[0], "query": f.Question}, &ans); err != nil {
		if fe, ok := toolFieldErrors(err); ok {
			a.render(w, r, http.StatusUnprocessableEntity, "personas.html", &templateData{Title: "Personas", Connected: true, Form: f,
				Errors: map[string]string{"question": fe["text"]}})
			return
		}
		a.picardError(w, r, err)
		return
	}
	for i, id := range ans.MemoryIDs {
		if i >= 10 {
			break
		}
		var m Memory
		if err := a.call(r.Context(), u, "get_memory", map[string]any{"memory_id": id}, &m); err == nil {
			ans.Used = append(ans.Used, &m)
		}
	}
	a.render(w, r, http.StatusOK, "personas.html", &templateData{Title: "Personas", Connected: true, Form: f, Data: &ans})
}
