package memories

// Export and import: memories as JSON Lines, one object a line.
//
// An owner's export holds their memories (decrypted, with permission,
// sharing, expiry and timestamps), each line {"kind":"memory", …the Memory
// shape…}. An instance export (admins, `picard export`) starts with the
// users ({"kind":"user"}, password hashes included so people keep their
// passwords) and groups ({"kind":"group"}), then every memory.
//
// Import is all or nothing: every line is checked first, a bad line fails
// the whole import with an error naming the line, and the records are
// written in one transaction. It is idempotent by id: a memory already
// present with the same content is left alone, one with different content
// is updated to the file's version, and an id that belongs to someone else
// is refused, never overwritten. Text is encrypted by the fernet hook on
// save and every written memory goes through the outbox (pending, then
// indexed by the reconciler).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/picard-mcp/picard/internal/strictjson"
	"github.com/picard-mcp/picard/pb_migrations"
)

// Import limits.
const (
	MaxImportLines     = 100_000
	MaxImportLineBytes = 1 << 20
)

// Line kinds of an export file.
const (
	KindMemory = "memory"
	KindUser   = "user"
	KindGroup  = "group"
)

// MemoryLine is one memory of an export file.
type MemoryLine struct {
	Kind string `json:"kind"`
	Memory
}

// UserLine is one user of an instance export.
type UserLine struct {
	Kind         string `json:"kind"`
	ID           string `json:"id"`
	Username     string `json:"username"`
	Email        string `json:"email"`
	Verified     bool   `json:"verified"`
	PasswordHash string `json:"password_hash"`
}

// GroupLine is one group of an instance export.
type GroupLine struct {
	Kind    string   `json:"kind"`
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	OwnerID string   `json:"owner_id"`
	Members []string `json:"members"`
}

// ExportOwner writes the owner's memories (expired ones excluded: they
// are gone on every path) as JSON Lines, oldest first. It returns how many
// it wrote.
func (s *Service) ExportOwner(ctx context.Context, ownerID string, w io.Writer) (int, error) {
	return s.ExportOwnerReporting(ctx, ownerID, w, nil)
}

// ExportOwnerReporting is ExportOwner that also calls exported with the
// ids of each batch of memories once their lines are written (the access
// log records them).
func (s *Service) ExportOwnerReporting(ctx context.Context, ownerID string, w io.Writer, exported func(ids []string)) (int, error) {
	return s.exportMemories(ctx, dbx.HashExp{"owner": ownerID}, w, exported)
}

// ExportInstance writes every user, group and memory of the instance.
func (s *Service) ExportInstance(ctx context.Context, w io.Writer) (int, error) {
	enc := json.NewEncoder(w)
	var users []struct {
		ID       string `db:"id"`
		Username string `db:"username"`
		Email    string `db:"email"`
		Verified bool   `db:"verified"`
		Password string `db:"password"`
	}
	if err := s.app.DB().Select("id", "username", "email", "verified", "password").From(pb_migrations.Users).OrderBy("id").All(&users); err != nil {
		return 0, fmt.Errorf("export users: %w", err)
	}
	for _, u := range users {
		if err := enc.Encode(UserLine{Kind: KindUser, ID: u.ID, Username: u.Username, Email: u.Email, Verified: u.Verified, PasswordHash: u.Password}); err != nil {
			return 0, fmt.Errorf("export users: %w", err)
		}
	}
	var groups []*core.Record
	if err := s.app.RecordQuery(pb_migrations.Groups).OrderBy("id").All(&groups); err != nil {
		return 0, fmt.Errorf("export groups: %w", err)
	}
	for _, g := range groups {
		if err := enc.Encode(GroupLine{Kind: KindGroup, ID: g.Id, Name: g.GetString("name"), OwnerID: g.GetString("owner"), Members: nonNil(g.GetStringSlice("members"))}); err != nil {
			return 0, fmt.Errorf("export groups: %w", err)
		}
	}
	return s.exportMemories(ctx, nil, w, nil)
}

func (s *Service) exportMemories(ctx context.Context, where dbx.Expression, w io.Writer, exported func(ids []string)) (int, error) {
	enc := json.NewEncoder(w)
	now := dbTime(s.timeNow())
	n := 0
	lastCreated, lastID := "", ""
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		q := s.app.RecordQuery(pb_migrations.Memories).
			AndWhere(dbx.NewExp("(expires_at = '' OR expires_at > {:now})", dbx.Params{"now": now})).
			AndWhere(dbx.NewExp("(created > {:c} OR (created = {:c} AND id > {:id}))", dbx.Params{"c": lastCreated, "id": lastID}))
		if where != nil {
			q = q.AndWhere(where)
		}
		var recs []*core.Record
		if err := q.OrderBy("created ASC", "id ASC").Limit(200).All(&recs); err != nil {
			return n, internal("export memories", err)
		}
		if len(recs) == 0 {
			return n, nil
		}
		ids := make([]string, 0, len(recs))
		for _, r := range recs {
			m, err := s.toMemory(r, nil)
			if err != nil {
				return n, err
			}
			if err := enc.Encode(MemoryLine{Kind: KindMemory, Memory: *m}); err != nil {
				return n, fmt.Errorf("export memories: %w", err)
			}
			n++
			ids = append(ids, m.ID)
		}
		if exported != nil {
			exported(ids)
		}
		last := recs[len(recs)-1]
		lastCreated, lastID = last.GetString("created"), last.Id
	}
}

// ImportResult counts what an import did.
type ImportResult struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Expired   int `json:"skipped_expired"`
	Users     int `json:"users_created"`
	Groups    int `json:"groups_created"`
	// Written are the memories created or updated, with their owners,
	// for the access log.
	Written []Written `json:"-"`
}

// Written is one memory an import created or updated.
type Written struct{ ID, OwnerID string }

// ImportOwner imports memories into ownerID's account. Lines' owner_id is
// ignored (an account may have another id on the instance it came from);
// user and group lines are refused.
func (s *Service) ImportOwner(ctx context.Context, ownerID string, r io.Reader) (*ImportResult, error) {
	if ownerID == "" {
		return nil, invalid("owner", "is required")
	}
	return s.importLines(ctx, ownerID, r)
}

// ImportInstance imports an instance export: users and groups missing here
// are created with their ids, memories keep their owners.
func (s *Service) ImportInstance(ctx context.Context, r io.Reader) (*ImportResult, error) {
	return s.importLines(ctx, "", r)
}

type parsedImport struct {
	users    []UserLine
	groups   []GroupLine
	memories []MemoryLine
	lineOf   map[string]int // memory id -> line number
}

func lineErr(n int, format string, args ...any) *Error {
	return invalid(fmt.Sprintf("line %d", n), format, args...)
}

func (s *Service) parseImport(ownerID string, r io.Reader) (*parsedImport, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxImportLineBytes)
	p := &parsedImport{lineOf: map[string]int{}}
	n := 0
	for sc.Scan() {
		n++
		if n > MaxImportLines {
			return nil, lineErr(n, "too many lines; the limit is %d", MaxImportLines)
		}
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var probe struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(line, &probe); err != nil {
			return nil, lineErr(n, "is not a JSON object: %v", err)
		}
		switch probe.Kind {
		case "", KindMemory:
			var m MemoryLine
			if err := strictjson.Decode(line, &m); err != nil {
				return nil, lineErr(n, "%v", err)
			}
			if !IsUUID(m.ID) {
				return nil, lineErr(n, "id: must be a UUID")
			}
			if prev, dup := p.lineOf[m.ID]; dup {
				return nil, lineErr(n, "id %s already appears on line %d", m.ID, prev)
			}
			if _, err := validText(m.Text, "text"); err != nil {
				return nil, lineErr(n, "%v", err)
			}
			if m.Permission == "" {
				m.Permission = "private"
			}
			if _, ok := s.policies.Get(m.Permission); !ok {
				return nil, lineErr(n, "permission: unknown permission %q", m.Permission)
			}
			if ownerID != "" {
				m.OwnerID = ownerID
			} else if !IsUUID(m.OwnerID) {
				return nil, lineErr(n, "owner_id: must be a UUID")
			}
			p.lineOf[m.ID] = n
			p.memories = append(p.memories, m)
		case KindUser, KindGroup:
			if ownerID != "" {
				return nil, lineErr(n, "kind %q: only an instance import (picard import) creates users and groups", probe.Kind)
			}
			if probe.Kind == KindUser {
				var u UserLine
				if err := strictjson.Decode(line, &u); err != nil {
					return nil, lineErr(n, "%v", err)
				}
				if !IsUUID(u.ID) || u.Username == "" {
					return nil, lineErr(n, "a user needs a UUID id and a username")
				}
				p.users = append(p.users, u)
			} else {
				var g GroupLine
				if err := strictjson.Decode(line, &g); err != nil {
					return nil, lineErr(n, "%v", err)
				}
				if !IsUUID(g.ID) || g.Name == "" {
					return nil, lineErr(n, "a group needs a UUID id and a name")
				}
				p.groups = append(p.groups, g)
			}
		default:
			return nil, lineErr(n, "kind: unknown kind %q; one of memory, user, group", probe.Kind)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, lineErr(n+1, "is longer than %d bytes", MaxImportLineBytes)
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, invalid("body", "the import is larger than %d bytes; split it", tooBig.Limit)
		}
		return nil, internal("read import", err)
	}
	return p, nil
}

func (s *Service) importLines(ctx context.Context, ownerID string, r io.Reader) (*ImportResult, error) {
	p, err := s.parseImport(ownerID, r)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{}
	err = s.app.RunInTransaction(func(tx core.App) error {
		if err := importUsers(tx, p.users, res); err != nil {
			return err
		}
		if err := importGroups(tx, p.groups, res); err != nil {
			return err
		}
		users, groups, err := knownIDs(tx, p)
		if err != nil {
			return err
		}
		col, err := tx.FindCachedCollectionByNameOrId(pb_migrations.Memories)
		if err != nil {
			return internal("memories collection", err)
		}
		now := s.timeNow()
		// the service queues what it wrote for the indexer itself, after
		// the commit, so the saves do not wake the reconciler
		saveCtx := indexedByCaller(ctx)
		for chunk := range slices.Chunk(p.memories, importChunk) {
			if err := ctx.Err(); err != nil {
				return err
			}
			have, err := importedRecords(tx, chunk)
			if err != nil {
				return err
			}
			from := len(res.Written)
			for _, m := range chunk {
				if err := s.importMemory(saveCtx, tx, col, have[m.ID], m, p.lineOf[m.ID], users, groups, now, res); err != nil {
					return err
				}
			}
			// a tombstone left by an earlier delete of a written id must
			// not remove what the outbox is about to index
			if ids := res.Written[from:]; len(ids) > 0 {
				mids := make([]any, len(ids))
				for i, w := range ids {
					mids[i] = w.ID
				}
				if _, err := tx.DB().Delete(pb_migrations.Tombstones, dbx.In("memory_id", mids...)).Execute(); err != nil {
					return internal("clear tombstones", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case len(res.Written) == 0:
	case ownerID == "":
		// an instance import (the CLI) indexes through Reconcile
		s.Kick()
	default:
		// the server's indexer takes them in passes, and a search after
		// the import waits for them like after any write
		ids := make([]string, len(res.Written))
		for i, w := range res.Written {
			ids[i] = w.ID
		}
		s.indexAllLater(ids)
	}
	return res, nil
}

// importChunk is how many lines of an import are looked up and their
// tombstones cleared together.
const importChunk = 500

// importedRecords loads the records that already exist for ids of chunk.
func importedRecords(tx core.App, chunk []MemoryLine) (map[string]*core.Record, error) {
	ids := make([]any, len(chunk))
	for i, m := range chunk {
		ids[i] = m.ID
	}
	var recs []*core.Record
	if err := tx.RecordQuery(pb_migrations.Memories).Where(dbx.In("id", ids...)).All(&recs); err != nil {
		return nil, internal("load existing memories", err)
	}
	have := make(map[string]*core.Record, len(recs))
	for _, r := range recs {
		have[r.Id] = r
	}
	return have, nil
}

// importMemory writes one checked line; rec is its record when the id
// exists already, else nil. Like Submit it saves without PocketBase's
// record validation: parseImport and the checks here cover the same
// ground (text, a known permission, a UUID id unique across owners, owner,
// sharing ids that exist, expiry), and PocketBase would compile the
// collection's patterns and query the relations again for every line.
func (s *Service) importMemory(ctx context.Context, tx core.App, col *core.Collection, rec *core.Record, m MemoryLine, line int, users, groups map[string]bool, now time.Time, res *ImportResult) error {
	if _, known := users[m.OwnerID]; !known {
		return lineErr(line, "owner_id: no such user %s", m.OwnerID)
	}
	shared := slices.DeleteFunc(slices.Clone(m.SharedWith), func(u string) bool { return u == m.OwnerID })
	for _, u := range shared {
		if !users[u] {
			return lineErr(line, "shared_with: no such user %s", u)
		}
	}
	for _, g := range m.SharedWithGroups {
		if !groups[g] {
			return lineErr(line, "shared_with_groups: no such group %s", g)
		}
	}
	pol, _ := s.policies.Get(m.Permission)
	if err := pol.ValidateSharing(shared, m.SharedWithGroups); err != nil {
		return lineErr(line, "sharing: %v", err)
	}
	if m.ExpirationDate != nil && !m.ExpirationDate.After(now) {
		res.Expired++
		return nil
	}
	exp := ""
	if m.ExpirationDate != nil {
		exp = dbTime(*m.ExpirationDate)
	}
	isNew := rec == nil
	if isNew {
		rec = core.NewRecord(col)
		rec.Id = m.ID
	} else {
		if rec.GetString("owner") != m.OwnerID {
			return lineErr(line, "id %s belongs to another user; refusing to overwrite it", m.ID)
		}
		old, err := s.toMemory(rec, nil)
		if err != nil {
			return err
		}
		if old.Text == m.Text && old.Permission == m.Permission && sameSet(old.SharedWith, shared) &&
			sameSet(old.SharedWithGroups, m.SharedWithGroups) && rec.GetString("expires_at") == exp {
			res.Unchanged++
			return nil
		}
	}
	rec.Set("owner", m.OwnerID)
	rec.Set("text", m.Text)
	rec.Set("permission", m.Permission)
	rec.Set("shared_users", shared)
	rec.Set("shared_groups", m.SharedWithGroups)
	rec.Set("expires_at", exp)
	if isNew && !m.Created.IsZero() {
		if dt, err := types.ParseDateTime(m.Created.UTC()); err == nil {
			rec.SetRaw("created", dt)
		}
	}
	if !m.Updated.IsZero() {
		if dt, err := types.ParseDateTime(m.Updated.UTC()); err == nil {
			rec.SetRaw("updated", dt)
		}
	}
	if err := tx.SaveNoValidateWithContext(ctx, rec); err != nil {
		return lineErr(line, "cannot be saved: %v", err)
	}
	if isNew {
		res.Created++
	} else {
		res.Updated++
	}
	res.Written = append(res.Written, Written{ID: m.ID, OwnerID: m.OwnerID})
	return nil
}

func importUsers(tx core.App, users []UserLine, res *ImportResult) error {
	if len(users) == 0 {
		return nil
	}
	col, err := tx.FindCachedCollectionByNameOrId(pb_migrations.Users)
	if err != nil {
		return internal("users collection", err)
	}
	for _, u := range users {
		if _, err := tx.FindRecordById(col, u.ID); err == nil {
			continue
		}
		rec := core.NewRecord(col)
		rec.Id = u.ID
		rec.Set("username", u.Username)
		rec.SetEmail(u.Email)
		rec.SetVerified(u.Verified)
		rec.SetRandomPassword()
		if err := tx.Save(rec); err != nil {
			return invalid("user "+u.Username, "cannot be created: %v", err)
		}
		if u.PasswordHash != "" {
			if _, err := tx.DB().Update(pb_migrations.Users, dbx.Params{"password": u.PasswordHash}, dbx.HashExp{"id": u.ID}).Execute(); err != nil {
				return internal("set password hash", err)
			}
		}
		res.Users++
	}
	return nil
}

func importGroups(tx core.App, groups []GroupLine, res *ImportResult) error {
	if len(groups) == 0 {
		return nil
	}
	col, err := tx.FindCachedCollectionByNameOrId(pb_migrations.Groups)
	if err != nil {
		return internal("groups collection", err)
	}
	for _, g := range groups {
		if _, err := tx.FindRecordById(col, g.ID); err == nil {
			continue
		}
		rec := core.NewRecord(col)
		rec.Id = g.ID
		rec.Set("name", g.Name)
		rec.Set("owner", g.OwnerID)
		rec.Set("members", g.Members)
		if err := tx.Save(rec); err != nil {
			return invalid("group "+g.Name, "cannot be created: %v", err)
		}
		res.Groups++
	}
	return nil
}

// knownIDs returns which user and group ids the import's memories may name.
func knownIDs(tx core.App, p *parsedImport) (map[string]bool, map[string]bool, error) {
	var uids, gids []string
	for _, m := range p.memories {
		uids = append(uids, m.OwnerID)
		uids = append(uids, m.SharedWith...)
		gids = append(gids, m.SharedWithGroups...)
	}
	users, err := existing(tx, pb_migrations.Users, uids)
	if err != nil {
		return nil, nil, err
	}
	groups, err := existing(tx, pb_migrations.Groups, gids)
	if err != nil {
		return nil, nil, err
	}
	return users, groups, nil
}

func existing(tx core.App, table string, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for chunk := range slices.Chunk(ids, 500) {
		var found []string
		if err := tx.DB().Select("id").From(table).Where(dbx.In("id", toAny(chunk)...)).Column(&found); err != nil {
			return nil, internal("check "+table, err)
		}
		for _, id := range found {
			out[id] = true
		}
	}
	return out, nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
