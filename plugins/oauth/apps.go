package oauth

import (
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/picard-mcp/picard/pb_migrations"
)

// ConnectedApp is one app a user let use their memories.
type ConnectedApp struct {
	ClientID    string     `json:"client_id"`
	ClientName  string     `json:"client_name"`
	Scopes      []string   `json:"scopes"`
	ConnectedAt time.Time  `json:"connected_at"`
	LastUsed    *time.Time `json:"last_used,omitempty"`
}

type appRow struct {
	ClientRecordID string         `db:"client_record"`
	MetadataURL    string         `db:"metadata_url"`
	Name           string         `db:"name"`
	Scope          string         `db:"scope"`
	Created        types.DateTime `db:"created"`
	LastUsed       string         `db:"last_used"`
}

// ConnectedApps lists the clients holding a live grant of userID.
func (s *Server) ConnectedApps(userID string) ([]ConnectedApp, error) {
	var rows []appRow
	err := s.app.DB().NewQuery(`SELECT c.id AS client_record, c.metadata_url AS metadata_url, c.name AS name,
			g.scope AS scope, g.created AS created,
			COALESCE((SELECT MAX(t.created) FROM ` + pb_migrations.OAuthTokens + ` t WHERE t.[[grant]] = g.id), '') AS last_used
		FROM ` + pb_migrations.OAuthGrants + ` g
		JOIN ` + pb_migrations.OAuthClients + ` c ON c.id = g.client
		WHERE g.user = {:user} AND g.revoked = FALSE AND c.disabled = FALSE`).
		Bind(dbx.Params{"user": userID}).All(&rows)
	if err != nil {
		return nil, err
	}
	byClient := map[string]*ConnectedApp{}
	for _, r := range rows {
		id := r.ClientRecordID
		if r.MetadataURL != "" {
			id = r.MetadataURL
		}
		a := byClient[id]
		if a == nil {
			a = &ConnectedApp{ClientID: id, ClientName: r.Name, Scopes: []string{}, ConnectedAt: r.Created.Time()}
			byClient[id] = a
		}
		if t := r.Created.Time(); t.Before(a.ConnectedAt) {
			a.ConnectedAt = t
		}
		for _, sc := range strings.Fields(r.Scope) {
			if !slices.Contains(a.Scopes, sc) {
				a.Scopes = append(a.Scopes, sc)
			}
		}
		if lu, err := types.ParseDateTime(r.LastUsed); err == nil && !lu.IsZero() {
			if t := lu.Time(); a.LastUsed == nil || t.After(*a.LastUsed) {
				a.LastUsed = &t
			}
		}
	}
	out := make([]ConnectedApp, 0, len(byClient))
	for _, a := range byClient {
		sort.Strings(a.Scopes)
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ConnectedAt.Before(out[j].ConnectedAt) })
	return out, nil
}

// DisconnectApp revokes every grant of userID for the client and forgets
// the consent; it reports whether there was anything to revoke.
func (s *Server) DisconnectApp(userID, clientRecordID string) (bool, error) {
	res, err := s.app.DB().Update(pb_migrations.OAuthGrants, dbx.Params{"revoked": true},
		dbx.NewExp("user = {:u} AND client = {:c} AND revoked = FALSE", dbx.Params{"u": userID, "c": clientRecordID})).Execute()
	s.verified.invalidate()
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	if _, err := s.app.DB().Delete(pb_migrations.OAuthConsents,
		dbx.HashExp{"user": userID, "client": clientRecordID}).Execute(); err != nil {
		return false, err
	}
	return n > 0, nil
}

func (s *Server) handleListApps(e *core.RequestEvent) error {
	apps, err := s.ConnectedApps(ClaimsFrom(e).Subject)
	if err != nil {
		return e.InternalServerError("", err)
	}
	e.Response.Header().Set("Cache-Control", "no-store")
	return e.JSON(http.StatusOK, map[string]any{"apps": apps})
}

func (s *Server) handleRevokeApp(e *core.RequestEvent) error {
	notFound := func() error {
		return e.JSON(http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "no connected app with that client_id"})
	}
	id := e.Request.PathValue("client_id")
	var c *core.Record
	var err error
	switch {
	case uuidRE.MatchString(id):
		c, err = s.app.FindRecordById(pb_migrations.OAuthClients, id)
	case s.isURLClientID(id):
		c, err = s.app.FindFirstRecordByData(pb_migrations.OAuthClients, "metadata_url", id)
	default:
		return notFound()
	}
	if err != nil {
		return notFound()
	}
	found, err := s.DisconnectApp(ClaimsFrom(e).Subject, c.Id)
	if err != nil {
		return e.InternalServerError("", err)
	}
	if !found {
		return notFound()
	}
	return e.NoContent(http.StatusNoContent)
}

// schedulePurge deletes expired codes and sessions every hour.
func (s *Server) schedulePurge(app core.App) {
	app.Cron().MustAdd("picard_oauth_purge", "23 * * * *", func() {
		cutoff := types.NowDateTime().Add(-24 * time.Hour).String()
		for _, col := range []string{pb_migrations.OAuthCodes, pb_migrations.OAuthSessions} {
			if _, err := s.app.DB().Delete(col, dbx.NewExp("expires < {:t}", dbx.Params{"t": cutoff})).Execute(); err != nil {
				slog.Warn("oauth: purge expired", "collection", col, "error", err)
			}
		}
	})
}
