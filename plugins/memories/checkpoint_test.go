package memories_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestCheckpointsOffTheWritePath: while Picard serves, the connection that
// commits memory writes never checkpoints data.db's WAL itself (a commit
// that did waited for the copy and its fsync, and every writer queued
// behind it with it); the background checkpointer copies the writes into
// the database file instead, and what was written reads back.
func TestCheckpointsOffTheWritePath(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	for i := range 50 {
		if r := s.Tool(alice, "submit_memory", map[string]any{"text": fmt.Sprintf("checkpoint note %d", i)}); r.Status != 200 {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
	}
	var auto int
	if err := s.App.NonconcurrentDB().NewQuery("PRAGMA wal_autocheckpoint").Row(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Fatalf("the write connection checkpoints every %d pages itself; want 0 (background checkpoints)", auto)
	}
	// the background checkpointer catches up with the WAL: a checkpoint
	// run now finds every frame copied already (log == checkpointed)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var busy, logFrames, done int
		if err := s.App.ConcurrentDB().NewQuery("PRAGMA wal_checkpoint(PASSIVE)").Row(&busy, &logFrames, &done); err != nil {
			t.Fatal(err)
		}
		if busy == 0 && logFrames == done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WAL not checkpointed: %d of %d frames", done, logFrames)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := s.Tool(alice, "get_memories", map[string]any{"limit": 100})
	if got := len(r.Map(t)["memories"].([]any)); got != 50 {
		t.Fatalf("read back %d memories, want 50", got)
	}
}
