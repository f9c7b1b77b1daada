package main

import (
	"sync"
	"time"
)

// LoginLimiter counts failed sign-ins per account and per address in a
// sliding window; it lives in memory (one process), which is enough to make
// password guessing slow.
type LoginLimiter struct {
	mu         sync.Mutex
	fails      map[string][]time.Time
	Window     time.Duration
	PerAccount int
	PerAddress int
	now        func() time.Time
}

// NewLoginLimiter allows 5 failures per account and 20 per address in 15 minutes.
func NewLoginLimiter() *LoginLimiter {
	return &LoginLimiter{fails: map[string][]time.Time{}, Window: 15 * time.Minute, PerAccount: 5, PerAddress: 20, now: time.Now}
}

func (l *LoginLimiter) recent(key string) int {
	cut := l.now().Add(-l.Window)
	ts := l.fails[key]
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = ts
	}
	return len(ts)
}

// Blocked reports whether this account or address must wait.
func (l *LoginLimiter) Blocked(account, addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recent("u:"+account) >= l.PerAccount || l.recent("a:"+addr) >= l.PerAddress
}

// Fail records a failed attempt.
func (l *LoginLimiter) Fail(account, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.fails["u:"+account] = append(l.fails["u:"+account], now)
	l.fails["a:"+addr] = append(l.fails["a:"+addr], now)
}

// Succeed forgets the account's failures.
func (l *LoginLimiter) Succeed(account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, "u:"+account)
}
