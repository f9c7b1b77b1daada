// Package memories is the memory domain: create, read, update, delete,
// permissions, expiry and semantic search, plus the outbox that keeps the
// vector store in step with the records (see reconciler.go).
//
// The PocketBase record is the source of truth. Every read re-checks the
// permission policy against the record, never the vector store's copy alone.
package memories

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/platform/policy"
	"github.com/picard-mcp/picard/plugins/fernet"
	"github.com/picard-mcp/picard/vectorstore"
)

// Limits users meet.
const (
	MaxTextChars     = 10_000
	MaxShared        = 100
	DefaultListLimit = 20
	MaxListLimit     = 100
	DefaultQueryLim  = 5
	MaxQueryLimit    = 50
	MaxQueryChars    = 2_000
)

var uuidRE = regexp.MustCompile(pb_migrations.MemoryIDPattern)

// IsUUID reports whether s is a lowercase UUID v4 or v7 string.
func IsUUID(s string) bool { return uuidRE.MatchString(s) }

// Memory is a memory as clients see it.
type Memory struct {
	ID               string     `json:"id"`
	Text             string     `json:"text"`
	Permission       string     `json:"permission"`
	SharedWith       []string   `json:"shared_with"`
	SharedWithGroups []string   `json:"shared_with_groups"`
	OwnerID          string     `json:"owner_id"`
	ExpirationDate   *time.Time `json:"expiration_date"`
	Created          time.Time  `json:"created"`
	Updated          time.Time  `json:"updated"`
	Score            *float64   `json:"score,omitempty"`
	// Signals (search results only) say why it matched: keyword, context
	// (its neighbours in time matched), dense (embedding similarity).
	Signals []string `json:"signals,omitempty"`
}

// Service implements the memory operations for one app.
type Service struct {
	app      core.App
	cipher   *fernet.Cipher
	policies *policy.Registry
	store    vectorstore.Store
	embedder vectorstore.Embedder
	now      func() time.Time
	kick     chan struct{}
	idx      indexer
	saves    saveGroup
	inserts  insertStmts // the group commit's prepared INSERTs (directInsert)

	texts     *textCache // decrypted texts of recently read memories
	pagesOnce sync.Once
	pages     *pageCache // get_memories pages; nil: not a plain dbx.DB
	stmtsOnce sync.Once
	stmts     *stmtCache // prepared reads; nil: not a plain dbx.DB
	readyStmt writeStmt  // the indexer's markReady, prepared on the write pool

	keywords vectorstore.KeywordIndex // nil: the store keeps none
	hybrid   *vectorstore.Hybrid
	dense    bool // queries also run the dense search; indexing keeps vectors

	noVectorsMarked atomic.Bool // vectors.incomplete written (markVectorsIncomplete)

	groups groupCache // viewers' group memberships (viewer.go)
}

func (s *Service) timeNow() time.Time { return s.now().UTC() }

// Viewer loads the viewer's group memberships.
func (s *Service) Viewer(userID string) (policy.Viewer, error) {
	v := policy.Viewer{UserID: userID}
	ids, err := s.groupsOf(userID) // search hook: memberships kept in memory (viewer.go)
	if err != nil {
		return v, internal("load groups", err)
	}
	v.Groups = ids
	return v, nil
}

// SubmitInput is submit_memory's arguments.
type SubmitInput struct {
	Text             string
	Permission       string
	SharedWith       []string
	SharedWithGroups []string
	ExpirationDate   string
}

// Submit stores a new memory owned by ownerID.
func (s *Service) Submit(ctx context.Context, ownerID string, in SubmitInput) (*Memory, error) {
	text, err := validText(in.Text, "text")
	if err != nil {
		return nil, err
	}
	if in.Permission == "" {
		in.Permission = "private"
	}
	users, groups, err := s.validSharing(ownerID, in.Permission, in.SharedWith, in.SharedWithGroups)
	if err != nil {
		return nil, err
	}
	exp, err := s.validExpiry(in.ExpirationDate)
	if err != nil {
		return nil, err
	}
	col, err := s.app.FindCachedCollectionByNameOrId(pb_migrations.Memories)
	if err != nil {
		return nil, internal("memories collection", err)
	}
	rec := core.NewRecord(col)
	id, created, err := newMemoryID()
	if err != nil {
		return nil, internal("memory id", err)
	}
	rec.Id = id
	rec.Set("created", created) // the id's own moment: (created, id) is the order of arrival
	rec.Set("owner", ownerID)
	rec.Set("text", text)
	rec.Set("permission", in.Permission)
	rec.Set("shared_users", users)
	rec.Set("shared_groups", groups)
	rec.Set("expires_at", exp)
	if err := s.save(ctx, rec); err != nil {
		return nil, internal("save memory", err)
	}
	s.indexLater(ctx, rec.Id, privateOwner(rec))
	return s.toMemory(rec, nil)
}

// newMemoryID returns a UUID v7 and the millisecond it carries. v7 ids from
// one process increase strictly (google/uuid counts within a millisecond),
// so memories written in the same millisecond list, page and lend temporal
// context in the order they arrived, where random v4 ids ordered them by
// chance.
func newMemoryID() (string, types.DateTime, error) {
	u, err := uuid.NewV7()
	if err != nil { // the system's random source failed
		return "", types.DateTime{}, err
	}
	ms := int64(binary.BigEndian.Uint64(u[:8]) >> 16) //nolint:gosec // 48 bits of milliseconds fit
	created, err := types.ParseDateTime(time.UnixMilli(ms).UTC())
	return u.String(), created, err
}

// UpdateInput is update_memory's arguments; nil means unchanged.
type UpdateInput struct {
	Text           *string
	ExpirationDate *string // "" clears the expiry
}

// Update changes a memory's text or expiry; only the owner may.
func (s *Service) Update(ctx context.Context, ownerID, id string, in UpdateInput) (*Memory, error) {
	if in.Text == nil && in.ExpirationDate == nil {
		return nil, invalid("text", "give text or expiration_date to change")
	}
	if !IsUUID(id) {
		return nil, invalid("memory_id", "must be a UUID")
	}
	var text, exp string
	if in.Text != nil {
		t, err := validText(*in.Text, "text")
		if err != nil {
			return nil, err
		}
		text = t
	}
	if in.ExpirationDate != nil {
		e, err := s.validExpiry(*in.ExpirationDate)
		if err != nil {
			return nil, err
		}
		exp = e
	}
	rec, err := s.saveEdit(ctx, func(tx core.App) (*core.Record, error) {
		rec, err := s.ownRecordIn(tx, ownerID, id)
		if err != nil {
			return nil, err
		}
		if in.Text != nil {
			rec.Set("text", text)
		}
		if in.ExpirationDate != nil {
			rec.Set("expires_at", exp)
		}
		return rec, nil
	})
	if err != nil {
		return nil, saveError(err)
	}
	s.indexLater(ctx, rec.Id, privateOwner(rec))
	return s.toMemory(rec, nil)
}

// saveError is a failed save as the caller gets it: the service's own
// errors (the memory is not the caller's) as they are, anything else
// internal.
func saveError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return internal("save memory", err)
}

// ModifyPermissions changes who may read a memory; only the owner may.
func (s *Service) ModifyPermissions(ctx context.Context, ownerID, id, permission string, sharedWith, sharedGroups []string) (*Memory, error) {
	if permission == "" {
		return nil, invalid("permission", "is required; one of %s", strings.Join(s.policies.Names(), ", "))
	}
	users, groups, err := s.validSharing(ownerID, permission, sharedWith, sharedGroups)
	if err != nil {
		return nil, err
	}
	if !IsUUID(id) {
		return nil, invalid("memory_id", "must be a UUID")
	}
	rec, err := s.saveEdit(ctx, func(tx core.App) (*core.Record, error) {
		rec, err := s.ownRecordIn(tx, ownerID, id)
		if err != nil {
			return nil, err
		}
		rec.Set("permission", permission)
		rec.Set("shared_users", users)
		rec.Set("shared_groups", groups)
		return rec, nil
	})
	if err != nil {
		return nil, saveError(err)
	}
	// a permission change is waited for by every search, whoever may
	// read the memory before or after it
	s.indexLater(ctx, rec.Id, "")
	return s.toMemory(rec, nil)
}

// Delete removes a memory; only the owner may. The vector follows through
// the tombstone outbox, so a store outage cannot resurrect it in search.
func (s *Service) Delete(ctx context.Context, ownerID, id string) error {
	rec, err := s.ownRecord(ownerID, id)
	if err != nil {
		return err
	}
	if err := s.app.DeleteWithContext(indexedByCaller(ctx), rec); err != nil {
		return internal("delete memory", err)
	}
	s.deleteLater(ctx)
	return nil
}

// Get returns one memory the viewer may read, or not found.
func (s *Service) Get(viewer policy.Viewer, id string) (*Memory, error) {
	if !IsUUID(id) {
		return nil, invalid("memory_id", "must be a UUID")
	}
	rows, err := s.rowsByID([]string{id})
	if err != nil {
		return nil, internal("load memory", err)
	}
	if len(rows) != 1 || !s.rowVisible(viewer, &rows[0]) {
		return nil, errNotFound()
	}
	m, err := s.rowToMemory(&rows[0])
	if err != nil {
		return nil, err
	}
	return redactFor(viewer, m), nil
}

// redactFor hides who else a memory is shared with from readers who are
// not its owner.
func redactFor(v policy.Viewer, m *Memory) *Memory {
	if m.OwnerID != v.UserID {
		m.SharedWith, m.SharedWithGroups = []string{}, []string{}
	}
	return m
}

// ListInput is get_memories' arguments.
type ListInput struct {
	Limit          int
	Cursor         string
	Permission     string
	Sort           string // newest (default) | oldest
	IncludeExpired bool
}

// ListResult is one page of the owner's memories.
type ListResult struct {
	Memories   []*Memory `json:"memories"`
	NextCursor string    `json:"next_cursor,omitempty"`

	enc              *encodedPage // set on pages shared through the page cache (see Encoded)
	unreadableExpiry bool         // an expiry on the page could not be parsed: never cached
	rows             []pagePos    // the rows read: the page's, then the one past it if any (refreshPage)
}

// List returns the owner's memories, newest first by default.
func (s *Service) List(ownerID string, in ListInput) (*ListResult, error) {
	if in.Limit == 0 {
		in.Limit = DefaultListLimit
	}
	if in.Limit < 1 || in.Limit > MaxListLimit {
		return nil, invalid("limit", "must be between 1 and %d", MaxListLimit)
	}
	if in.Permission != "" {
		if _, ok := s.policies.Get(in.Permission); !ok {
			return nil, invalid("permission", "unknown permission %q; one of %s", in.Permission, strings.Join(s.policies.Names(), ", "))
		}
	}
	desc := true
	switch in.Sort {
	case "", "newest":
	case "oldest":
		desc = false
	default:
		return nil, invalid("sort", "must be newest or oldest")
	}
	q := listQuery{ownerID: ownerID, permission: in.Permission, desc: desc, limit: in.Limit + 1}
	if !in.IncludeExpired {
		q.now = dbTime(s.timeNow())
	}
	if in.Cursor != "" {
		created, id, ok := decodeCursor(in.Cursor)
		if !ok {
			return nil, invalid("cursor", "is not a cursor returned by get_memories")
		}
		q.cursorCreated, q.cursorID = created, id
	}
	pc := s.pageCacheFor()
	if pc == nil {
		res, _, err := s.readPage(q, in.Limit)
		return res, err
	}
	// the versions before the query: a commit racing it outdates the page
	ver, ok := pc.probe.read()
	if !ok {
		res, _, err := s.readPage(q, in.Limit)
		return res, err
	}
	key := pageKey(q)
	now := s.timeNow()
	var ov ownerVersion
	res, grown, ok := pc.get(s.readStmts(), key, ownerID, ver, now, &ov)
	if ok {
		return res, nil
	}
	// concurrent misses of one page read it once (after a commit, every
	// connection of a busy owner misses at the same time): misses at one
	// data version, or, once the owner's counter was read, misses that
	// read the same counter (the page is the same at every data version
	// where the counter is)
	flightKey := key + "\x00d" + strconv.FormatInt(ver.data, 10)
	if ov.ok {
		flightKey = key + "\x00v" + strconv.FormatInt(ver.schema, 10) + "." + strconv.FormatInt(ov.version, 10)
	}
	v, err, _ := pc.flights.Do(flightKey, func() (any, error) {
		if !ov.ok {
			ov = pc.ownerVersion(s.readStmts(), ownerID, ver)
		}
		var res *ListResult
		var expires time.Time
		var err error
		if grown != nil {
			res, expires, err = s.refreshPage(q, in.Limit, grown, ov)
		} else {
			res, expires, err = s.readPage(q, in.Limit)
		}
		if err != nil {
			return nil, err
		}
		if !res.unreadableExpiry {
			pc.put(key, ver, ov, expires, res)
		}
		return flight{res, expires}, nil
	})
	if err != nil {
		return nil, err
	}
	f := v.(flight)
	if !f.expires.IsZero() && !now.Before(f.expires) {
		// read by another call just before a memory on it expired
		res, _, err := s.readPage(q, in.Limit)
		return res, err
	}
	return f.res, nil
}

type flight struct {
	res     *ListResult
	expires time.Time
}

// readPage reads one page: its memories and the earliest expiry among the
// rows read (zero if none expires or expired memories are included).
func (s *Service) readPage(q listQuery, limit int) (*ListResult, time.Time, error) {
	var expires time.Time
	recs, err := s.queryRows(q)
	if err != nil {
		return nil, expires, internal("list memories", err)
	}
	res := &ListResult{Memories: make([]*Memory, 0, min(len(recs), limit)), rows: make([]pagePos, 0, len(recs))}
	for i := range recs {
		res.rows = append(res.rows, pagePos{recs[i].Created, recs[i].ID})
		if i == limit {
			last := recs[i-1]
			res.NextCursor = encodeCursor(last.Created, last.ID)
			break
		}
		m, err := s.rowToMemory(&recs[i])
		if err != nil {
			return nil, expires, err
		}
		res.Memories = append(res.Memories, m)
	}
	if q.now != "" {
		expires, res.unreadableExpiry = earliestExpiry(recs, expires)
	}
	return res, expires, nil
}

// earliestExpiry returns the earliest of expires (zero: none) and the
// expiries of recs, and whether one of them could not be parsed (then the
// page has no TTL to be cached with).
func earliestExpiry(recs []memoryRow, expires time.Time) (time.Time, bool) {
	unreadable := false
	for i := range recs {
		if recs[i].ExpiresAt == "" {
			continue
		}
		t := parseDBTime(recs[i].ExpiresAt)
		if t.IsZero() {
			unreadable = true
			continue
		}
		if expires.IsZero() || t.Before(expires) {
			expires = t
		}
	}
	return expires, unreadable
}

// SearchInput is query_memory's arguments.
type SearchInput struct {
	Query   string
	Limit   int
	Scope   string // accessible (default) | own
	OwnerID string // only this owner's memories (personas); optional
}

// Search ranks the memories the viewer may read by relevance to the query:
// keyword BM25 with temporal context by default, fused with the dense
// search when that is on (see rank).
func (s *Service) Search(ctx context.Context, viewer policy.Viewer, in SearchInput) ([]*Memory, error) {
	query := strings.TrimSpace(in.Query)
	if query == "" {
		return nil, invalid("query", "is required")
	}
	if utf8.RuneCountInString(query) > MaxQueryChars {
		return nil, invalid("query", "must be at most %d characters", MaxQueryChars)
	}
	if in.Limit == 0 {
		in.Limit = DefaultQueryLim
	}
	if in.Limit < 1 || in.Limit > MaxQueryLimit {
		return nil, invalid("limit", "must be between 1 and %d", MaxQueryLimit)
	}
	filter := s.policies.Filter(viewer, s.timeNow())
	switch in.Scope {
	case "", "accessible":
	case "own":
		filter.OwnerID = viewer.UserID
	default:
		return nil, invalid("scope", "must be own or accessible")
	}
	if in.OwnerID != "" {
		if filter.OwnerID != "" && filter.OwnerID != in.OwnerID {
			return []*Memory{}, nil
		}
		filter.OwnerID = in.OwnerID
	}
	// read-your-writes: what was acknowledged before this search is in it
	s.waitIndexed(ctx, viewer.UserID)
	// Ask for a few more than needed: results the record re-check drops
	// (changed since indexing) must not shorten the page.
	hits, err := s.rank(ctx, query, filter, in.Limit+10)
	if err != nil {
		return nil, err
	}
	// the authoritative records of the first Limit hits in one query; the
	// next hits only for those the re-check drops (rare: the ranking
	// already applied the viewer's filter)
	out := make([]*Memory, 0, in.Limit)
	for lo := 0; lo < len(hits) && len(out) < in.Limit; {
		batch := hits[lo:min(len(hits), lo+in.Limit-len(out))]
		lo += len(batch)
		ids := make([]string, len(batch))
		for i, h := range batch {
			ids[i] = h.ID
		}
		loaded, err := s.loadHits(ids)
		if err != nil {
			return nil, internal("load search results", err)
		}
		for _, h := range batch {
			l, ok := loaded[h.ID]
			if !ok {
				continue // deleted since indexing
			}
			if l.err != nil {
				return nil, l.err
			}
			// the cache's rows are shared: checked, then copied, on every use
			if !s.memoryVisible(viewer, l.m) || (filter.OwnerID != "" && l.m.OwnerID != filter.OwnerID) {
				continue
			}
			score := h.Score
			m := *l.m
			m.Score = &score
			m.Signals = h.Signals.List()
			out = append(out, redactFor(viewer, &m))
		}
	}
	return out, nil
}

// ownRecord loads a memory the caller owns; anything else is not found.
// Expired memories are gone for every path, the owner's included.
func (s *Service) ownRecord(ownerID, id string) (*core.Record, error) {
	if !IsUUID(id) {
		return nil, invalid("memory_id", "must be a UUID")
	}
	return s.ownRecordIn(s.app, ownerID, id)
}

// ownRecordIn is ownRecord read through app (a transaction's).
func (s *Service) ownRecordIn(app core.App, ownerID, id string) (*core.Record, error) {
	rec, err := app.FindRecordById(pb_migrations.Memories, id)
	if err != nil || rec.GetString("owner") != ownerID {
		return nil, errNotFound()
	}
	if exp := rec.GetDateTime("expires_at"); !exp.IsZero() && !exp.Time().After(s.timeNow()) {
		return nil, errNotFound()
	}
	return rec, nil
}

func (s *Service) toMemory(rec *core.Record, score *float64) (*Memory, error) {
	// the record always holds a token: from the database, or put there by
	// the fernet hook when it was saved
	text, err := s.decrypt(rec.Id, rec.GetString("text"))
	if err != nil {
		return nil, err
	}
	m := &Memory{
		ID:               rec.Id,
		Text:             text,
		Permission:       rec.GetString("permission"),
		SharedWith:       nonNil(rec.GetStringSlice("shared_users")),
		SharedWithGroups: nonNil(rec.GetStringSlice("shared_groups")),
		OwnerID:          rec.GetString("owner"),
		Created:          rec.GetDateTime("created").Time().UTC(),
		Updated:          rec.GetDateTime("updated").Time().UTC(),
		Score:            score,
	}
	if exp := rec.GetDateTime("expires_at"); !exp.IsZero() {
		t := exp.Time().UTC()
		m.ExpirationDate = &t
	}
	return m, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func validText(text, field string) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "", invalid(field, "must not be empty")
	}
	if !utf8.ValidString(text) {
		return "", invalid(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > MaxTextChars {
		return "", invalid(field, "is %d characters; the limit is %d", n, MaxTextChars)
	}
	return text, nil
}

func (s *Service) validExpiry(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return "", invalid("expiration_date", "must be an RFC 3339 date-time such as 2030-01-02T15:04:05Z")
	}
	if !t.After(s.timeNow()) {
		return "", invalid("expiration_date", "must be in the future")
	}
	dt, err := types.ParseDateTime(t.UTC())
	if err != nil {
		return "", invalid("expiration_date", "out of range")
	}
	return dt.String(), nil
}

func (s *Service) validSharing(ownerID, permission string, users, groups []string) ([]string, []string, error) {
	p, ok := s.policies.Get(permission)
	if !ok {
		return nil, nil, invalid("permission", "unknown permission %q; one of %s", permission, strings.Join(s.policies.Names(), ", "))
	}
	users, err := s.validIDs("shared_with", pb_migrations.Users, users)
	if err != nil {
		return nil, nil, err
	}
	groups, err = s.validIDs("shared_with_groups", pb_migrations.Groups, groups)
	if err != nil {
		return nil, nil, err
	}
	for _, u := range users {
		if u == ownerID {
			return nil, nil, invalid("shared_with", "you already own this memory; do not list yourself")
		}
	}
	if err := p.ValidateSharing(users, groups); err != nil {
		field := "shared_with"
		if len(users) == 0 && len(groups) > 0 {
			field = "shared_with_groups"
		}
		return nil, nil, invalid(field, "%s", err.Error())
	}
	return users, groups, nil
}

func (s *Service) validIDs(field, collection string, ids []string) ([]string, error) {
	if len(ids) > MaxShared {
		return nil, invalid(field, "at most %d entries", MaxShared)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !IsUUID(id) {
			return nil, invalid(field, "%q is not a UUID", id)
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	if len(out) == 0 {
		return out, nil
	}
	var found []string
	q := s.app.DB().Select("id").From(collection).Where(dbx.In("id", toAny(out)...))
	if err := q.Column(&found); err != nil {
		return nil, internal("check "+field, err)
	}
	if len(found) != len(out) {
		have := map[string]bool{}
		for _, f := range found {
			have[f] = true
		}
		for _, id := range out {
			if !have[id] {
				return nil, invalid(field, "no such %s: %s", strings.TrimSuffix(collection, "s"), id)
			}
		}
	}
	return out, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func encodeCursor(created, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(created + "|" + id))
}

func decodeCursor(c string) (created, id string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", "", false
	}
	created, id, ok = strings.Cut(string(b), "|")
	if !ok || !IsUUID(id) {
		return "", "", false
	}
	if _, err := types.ParseDateTime(created); err != nil {
		return "", "", false
	}
	return created, id, true
}

// dbTime formats t as PocketBase stores dates, so SQL can compare them.
func dbTime(t time.Time) string {
	dt, _ := types.ParseDateTime(t.UTC())
	return dt.String()
}
