package oauth

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		events []time.Duration // offsets of recorded events
		at     time.Duration
		want   bool // blocked
	}{
		{"under the limit", []time.Duration{0, 1, 2}, 3 * time.Minute, false},
		{"at the limit", []time.Duration{0, 1, 2, 3}, 4 * time.Minute, true},
		{"old events slide out", []time.Duration{0, 1, 2, 3}, 10*time.Minute + 30*time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(4, 10*time.Minute)
			for _, e := range tc.events {
				l.Add("k", now.Add(e*time.Minute))
			}
			if got := l.Blocked("k", now.Add(tc.at)); got != tc.want {
				t.Fatalf("Blocked = %v, want %v", got, tc.want)
			}
			if l.Blocked("other", now.Add(tc.at)) {
				t.Fatal("keys are independent")
			}
		})
	}
	l := newLimiter(2, time.Hour)
	for i, want := range []bool{true, true, false} {
		if got := l.Take("ip", now); got != want {
			t.Fatalf("Take #%d = %v, want %v", i+1, got, want)
		}
	}
	l.Reset("ip")
	if !l.Take("ip", now) {
		t.Fatal("Reset must forget")
	}
}
