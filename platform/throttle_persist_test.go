package platform_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
)

// TestSignInThrottleSurvivesRestart: failed sign-ins at /authorize are
// kept in the database, so a server started again on the same data
// (a restart, or another replica) still refuses the locked account until
// the window has passed; no username or address is stored in clear.
func TestSignInThrottleSurvivesRestart(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	clientID := oaRegister(t, s, "app")
	oaConnect(t, s, clientID, "olga") // password oaPassword
	b := newOABrowser(t, s)
	params, _ := oaParams(t, clientID)
	for range 5 {
		if p := b.signIn(params, "olga", "wrong password!"); p.Status != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", p.Status)
		}
	}
	var stored []string
	if err := s.App.DB().Select("key_hash").From(pb_migrations.OAuthSignInFailures).Column(&stored); err != nil || len(stored) == 0 {
		t.Fatalf("failures are persisted: %v", err)
	}
	for _, k := range stored {
		if strings.Contains(k, "olga") || strings.Contains(k, "127.0.0.1") {
			t.Fatalf("keys are hashed, got %q", k)
		}
	}
	// "restart": a new server process on the data as it is on disk now
	if _, err := s.App.DB().NewQuery("PRAGMA wal_checkpoint(TRUNCATE)").Execute(); err != nil {
		t.Fatal(err)
	}
	s2 := picardtest.Start(t, picardtest.Options{Now: clk.Now, DataDir: s.App.DataDir()})
	b2 := newOABrowser(t, s2)
	params2, _ := oaParams(t, clientID)
	if p := b2.signIn(params2, "olga", oaPassword); p.Status != http.StatusTooManyRequests || !strings.Contains(p.Body, "Too many failed sign-ins") {
		t.Fatalf("after the restart the account is still locked: want 429, got %d", p.Status)
	}
	clk.Advance(15*time.Minute + time.Second)
	if p := b2.signIn(params2, "olga", oaPassword); p.Status != http.StatusSeeOther {
		t.Fatalf("after the window the right password works: %d", p.Status)
	}
}
