package memories_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/plugins/memories"
)

// TestGroupCommitOneBadWriteFailsAlone: writes committed together in one
// transaction are answered one by one: a write that fails (here an id that
// already exists) gets its error, and every other write of the same batch
// is committed, readable and decrypts.
func TestGroupCommitOneBadWriteFailsAlone(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	r := s.Tool(alice, "submit_memory", map[string]any{"text": "already here"})
	if r.Status != 200 {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	existing := r.Map(t)["id"].(string)

	col, err := s.App.FindCachedCollectionByNameOrId(pb_migrations.Memories)
	if err != nil {
		t.Fatal(err)
	}
	const n = 9
	recs := make([]*core.Record, n)
	for i := range recs {
		rec := core.NewRecord(col)
		rec.Id = uuid.NewString()
		if i == n/2 {
			rec.Id = existing // the bad one, in the middle of the batch
		}
		rec.Set("owner", alice.ID)
		rec.Set("text", fmt.Sprintf("batch memory %d", i))
		rec.Set("permission", "private")
		recs[i] = rec
	}
	errs := s.C.Memories.SaveBatch(context.Background(), recs)
	for i, err := range errs {
		if i == n/2 {
			if err == nil {
				t.Fatalf("the write reusing an existing id must fail")
			}
			continue
		}
		if err != nil {
			t.Fatalf("write %d of the batch failed with its neighbour: %v", i, err)
		}
	}
	var count int
	if err := s.App.DB().NewQuery("SELECT count(*) FROM memories WHERE owner = {:o}").Bind(map[string]any{"o": alice.ID}).Row(&count); err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("the first memory and the %d good writes of the batch are stored, got %d rows", n-1, count)
	}
	r = s.Tool(alice, "get_memories", map[string]any{"limit": 20})
	var page struct {
		Memories []struct {
			ID, Text string
		} `json:"memories"`
	}
	r.JSON(t, &page)
	texts := map[string]string{}
	for _, m := range page.Memories {
		texts[m.ID] = m.Text
	}
	if texts[existing] != "already here" {
		t.Fatalf("the existing memory is untouched, got %q", texts[existing])
	}
	for i, rec := range recs {
		if i != n/2 && texts[rec.Id] != fmt.Sprintf("batch memory %d", i) {
			t.Fatalf("write %d reads back with its text, got %q", i, texts[rec.Id])
		}
	}
}

// TestGroupCommitUpdateOfAnotherUsersMemoryFailsAlone: updates load their
// memory inside the batch's transaction; one by a user who does not own
// the memory is answered not found and writes nothing, and the owner's
// updates around it in the same batch are committed.
func TestGroupCommitUpdateOfAnotherUsersMemoryFailsAlone(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	client := s.RegisterClient(s.SuperuserToken())
	alice := s.UserToken(client, "alice")
	bob := s.UserToken(client, "bob")
	var ids []string
	for _, text := range []string{"first", "second"} {
		r := s.Tool(alice, "submit_memory", map[string]any{"text": text})
		if r.Status != 200 {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
		ids = append(ids, r.Map(t)["id"].(string))
	}
	errs := s.C.Memories.UpdateTextBatch(context.Background(),
		[]string{alice.ID, bob.ID, alice.ID},
		[]string{ids[0], ids[1], ids[1]},
		[]string{"first, edited", "bob was here", "second, edited"})
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("the owner's updates are committed: %v, %v", errs[0], errs[2])
	}
	var se *memories.Error
	if !errors.As(errs[1], &se) || se.Code != memories.CodeNotFound {
		t.Fatalf("an update of another user's memory is not found, got %v", errs[1])
	}
	for i, want := range []string{"first, edited", "second, edited"} {
		r := s.Tool(alice, "get_memory", map[string]any{"memory_id": ids[i]})
		if got := r.Map(t)["text"]; got != want {
			t.Fatalf("memory %d reads %q, want %q (%s)", i, got, want, r.Body)
		}
	}
}

// TestGroupCommitNewMemoriesKeepTheirHooks: new memories are written by
// the group commit's own INSERT, not PocketBase's save. What a save would
// do must still happen: the after-create hooks run once per memory, after
// the commit (the record is no longer new), with the text encrypted as
// the fernet hook would; the row holds a token, pending or indexed, with
// both times set; and the memory reads back.
func TestGroupCommitNewMemoriesKeepTheirHooks(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	type seen struct {
		id, text string
		isNew    bool
	}
	var mu sync.Mutex
	var got []seen
	s.App.OnRecordAfterCreateSuccess(pb_migrations.Memories).BindFunc(func(e *core.RecordEvent) error {
		mu.Lock()
		got = append(got, seen{e.Record.Id, e.Record.GetString("text"), e.Record.IsNew()})
		mu.Unlock()
		return e.Next()
	})
	const plain = "a memory with hooks"
	r := s.Tool(alice, "submit_memory", map[string]any{"text": plain})
	if r.Status != 200 {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	id := r.Map(t)["id"].(string)
	mu.Lock()
	hooks := slices.Clone(got)
	mu.Unlock()
	if len(hooks) != 1 || hooks[0].id != id {
		t.Fatalf("the after-create hook runs once for the new memory %s, saw %+v", id, hooks)
	}
	if hooks[0].isNew {
		t.Fatalf("the hook runs after the commit, on a saved record")
	}
	if hooks[0].text == plain {
		t.Fatalf("the record holds the token, as after the fernet hook, not the text")
	}
	if back, err := s.C.Cipher.Decrypt(hooks[0].text); err != nil || back != plain {
		t.Fatalf("the record's token opens to the text: %q, %v", back, err)
	}
	var row struct {
		Text, IndexStatus, Created, Updated string
	}
	if err := s.App.DB().NewQuery("SELECT text, index_status, created, updated FROM memories WHERE id = {:id}").
		Bind(map[string]any{"id": id}).One(&row); err != nil {
		t.Fatal(err)
	}
	if row.Text == plain || strings.Contains(row.Text, "hooks") {
		t.Fatalf("the stored text is encrypted, got %q", row.Text)
	}
	if row.IndexStatus != "pending" && row.IndexStatus != "ready" {
		t.Fatalf("a new memory enters the outbox, index_status %q", row.IndexStatus)
	}
	if row.Created == "" || row.Updated == "" {
		t.Fatalf("created and updated are set: %+v", row)
	}
	if r := s.Tool(alice, "get_memory", map[string]any{"memory_id": id}); r.Map(t)["text"] != plain {
		t.Fatalf("the memory reads back: %s", r.Body)
	}
}

// TestGroupCommitBatchOfNewAndChangedMemories: one batch holding a new
// memory and a change to an existing one commits both (the new one by the
// group commit's INSERT, the change through PocketBase's save), each
// encrypted and readable.
func TestGroupCommitBatchOfNewAndChangedMemories(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	r := s.Tool(alice, "submit_memory", map[string]any{"text": "before the change"})
	if r.Status != 200 {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	old, err := s.App.FindRecordById(pb_migrations.Memories, r.Map(t)["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	old.Set("text", "after the change")
	fresh := core.NewRecord(old.Collection())
	fresh.Id = uuid.NewString()
	fresh.Set("owner", alice.ID)
	fresh.Set("text", "new in the same batch")
	fresh.Set("permission", "private")
	for i, err := range s.C.Memories.SaveBatch(context.Background(), []*core.Record{fresh, old}) {
		if err != nil {
			t.Fatalf("write %d of the batch: %v", i, err)
		}
	}
	for id, want := range map[string]string{old.Id: "after the change", fresh.Id: "new in the same batch"} {
		var stored string
		if err := s.App.DB().NewQuery("SELECT text FROM memories WHERE id = {:id}").Bind(map[string]any{"id": id}).Row(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, want) {
			t.Fatalf("memory %s is stored encrypted, got %q", id, stored)
		}
		if got := s.Tool(alice, "get_memory", map[string]any{"memory_id": id}).Map(t)["text"]; got != want {
			t.Fatalf("memory %s reads %q, want %q", id, got, want)
		}
	}
}
