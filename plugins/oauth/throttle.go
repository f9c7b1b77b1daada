package oauth

import (
	"sync"
	"time"
)

// limiter counts events per key in a sliding window (in memory: one
// process; a restart forgets, which errs on the side of the user).
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	hits   map[string][]time.Time
}

// maxLimiterKeys bounds memory when many keys are seen; past it, keys with
// no recent events are dropped.
const maxLimiterKeys = 100_000

func newLimiter(maxEvents int, window time.Duration) *limiter {
	return &limiter{max: maxEvents, window: window, hits: map[string][]time.Time{}}
}

// recent returns key's events inside the window; l.mu must be held.
func (l *limiter) recent(key string, now time.Time) []time.Time {
	hs := l.hits[key]
	cut := 0
	for cut < len(hs) && !hs[cut].After(now.Add(-l.window)) {
		cut++
	}
	hs = hs[cut:]
	if len(hs) == 0 {
		delete(l.hits, key)
		return nil
	}
	l.hits[key] = hs
	return hs
}

// Blocked reports whether key has reached the limit.
func (l *limiter) Blocked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(key, now)) >= l.max
}

// Add records an event for key.
func (l *limiter) Add(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hits) >= maxLimiterKeys {
		for k := range l.hits {
			l.recent(k, now)
		}
	}
	l.hits[key] = append(l.recent(key, now), now)
}

// Take records an event unless key is at the limit; false means refused.
func (l *limiter) Take(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	hs := l.recent(key, now)
	if len(hs) >= l.max {
		return false
	}
	l.hits[key] = append(hs, now)
	return true
}

// Reset forgets key's events.
func (l *limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.hits, key)
}
