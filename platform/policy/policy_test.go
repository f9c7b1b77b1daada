package policy_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/picard-mcp/picard/platform/policy"
	"github.com/picard-mcp/picard/plugins/statistical"
	"github.com/picard-mcp/picard/vectorstore"
)

func registry(t *testing.T) *policy.Registry {
	r := policy.NewRegistry()
	if err := policy.RegisterBuiltins(r); err != nil {
		t.Fatal(err)
	}
	if err := statistical.Register(r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistryRefusesDuplicatesAndBadNames(t *testing.T) {
	r := registry(t)
	if err := r.Register(policy.Public{}); err == nil {
		t.Fatal("registering public twice must fail")
	}
	if got := fmt.Sprint(r.Names()); got != "[private public shared statistical]" {
		t.Fatalf("names: %s", got)
	}
}

func TestCanRead(t *testing.T) {
	r := registry(t)
	owner, bob, carol := "owner", "bob", "carol"
	cases := []struct {
		name string
		v    policy.Viewer
		m    policy.Memory
		want bool
	}{
		{"owner reads private", policy.Viewer{UserID: owner}, policy.Memory{OwnerID: owner, Permission: "private"}, true},
		{"other cannot read private", policy.Viewer{UserID: bob}, policy.Memory{OwnerID: owner, Permission: "private"}, false},
		{"anyone reads public", policy.Viewer{UserID: bob}, policy.Memory{OwnerID: owner, Permission: "public"}, true},
		{"named user reads shared", policy.Viewer{UserID: bob}, policy.Memory{OwnerID: owner, Permission: "shared", SharedUsers: []string{bob}}, true},
		{"unnamed user cannot read shared", policy.Viewer{UserID: carol}, policy.Memory{OwnerID: owner, Permission: "shared", SharedUsers: []string{bob}}, false},
		{"group member reads shared", policy.Viewer{UserID: carol, Groups: []string{"g1"}}, policy.Memory{OwnerID: owner, Permission: "shared", SharedGroups: []string{"g1"}}, true},
		{"other group cannot read shared", policy.Viewer{UserID: carol, Groups: []string{"g2"}}, policy.Memory{OwnerID: owner, Permission: "shared", SharedGroups: []string{"g1"}}, false},
		{"statistical hidden from others", policy.Viewer{UserID: bob}, policy.Memory{OwnerID: owner, Permission: "statistical"}, false},
		{"statistical readable by owner", policy.Viewer{UserID: owner}, policy.Memory{OwnerID: owner, Permission: "statistical"}, true},
		{"unknown type: owner only", policy.Viewer{UserID: bob}, policy.Memory{OwnerID: owner, Permission: "mystery"}, false},
		{"anonymous reads nothing", policy.Viewer{}, policy.Memory{OwnerID: owner, Permission: "private"}, false},
	}
	for _, c := range cases {
		if got := r.CanRead(c.v, c.m); got != c.want {
			t.Errorf("%s: got %v want %v", c.name, got, c.want)
		}
	}
}

// TestFilterAgreesWithCanRead: the vector-store filter derived from the
// policies selects exactly what CanRead allows, over random memories.
func TestFilterAgreesWithCanRead(t *testing.T) {
	r := registry(t)
	rng := rand.New(rand.NewPCG(7, 7))
	users := []string{"u1", "u2", "u3", "u4"}
	groups := []string{"g1", "g2", "g3"}
	perms := append(r.Names(), "mystery")
	pick := func(from []string) []string {
		var out []string
		for _, s := range from {
			if rng.IntN(3) == 0 {
				out = append(out, s)
			}
		}
		return out
	}
	now := time.Now()
	for i := 0; i < 5000; i++ {
		m := policy.Memory{OwnerID: users[rng.IntN(len(users))], Permission: perms[rng.IntN(len(perms))], SharedUsers: pick(users), SharedGroups: pick(groups)}
		v := policy.Viewer{UserID: users[rng.IntN(len(users))], Groups: pick(groups)}
		meta := vectorstore.Meta{OwnerID: m.OwnerID, Permission: m.Permission, SharedUsers: m.SharedUsers, SharedGroups: m.SharedGroups}
		if got, want := r.Filter(v, now).Matches(meta), r.CanRead(v, m); got != want {
			t.Fatalf("viewer %+v memory %+v: filter %v, CanRead %v", v, m, got, want)
		}
	}
}

func TestSharingValidation(t *testing.T) {
	r := registry(t)
	for _, c := range []struct {
		perm          string
		users, groups []string
		ok            bool
	}{
		{"private", nil, nil, true},
		{"private", []string{"u"}, nil, false},
		{"public", nil, []string{"g"}, false},
		{"shared", nil, nil, false},
		{"shared", []string{"u"}, nil, true},
		{"shared", nil, []string{"g"}, true},
		{"statistical", []string{"u"}, nil, false},
	} {
		p, _ := r.Get(c.perm)
		if err := p.ValidateSharing(c.users, c.groups); (err == nil) != c.ok {
			t.Errorf("%s %v %v: err %v", c.perm, c.users, c.groups, err)
		}
	}
}
