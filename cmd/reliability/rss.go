package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// rssSeries samples a process's RSS at a fixed interval while the soak
// runs: growth is judged on the whole curve, not on two readings that a
// garbage collection or a burst of requests could move by itself.
type rssSeries struct {
	every time.Duration
	mu    sync.Mutex
	kb    []int64
	stop  chan struct{}
	done  chan struct{}
}

// sampleRSS starts sampling read every interval until stop.
func sampleRSS(every time.Duration, read func() int64) *rssSeries {
	r := &rssSeries{every: every, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				if kb := read(); kb > 0 {
					r.mu.Lock()
					r.kb = append(r.kb, kb)
					r.mu.Unlock()
				}
			}
		}
	}()
	return r
}

// Stop ends sampling and returns the samples, oldest first.
func (r *rssSeries) Stop() []int64 {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kb
}

// rssGrowth compares the mean RSS over the last fifth of the samples with
// the mean over the fifth that follows the warm-up (the first warm of
// them, caches and pools filling): a leak shows as a rising trend between
// the two; one high sample does not. ok is false with too few samples.
func rssGrowth(kb []int64, warm int) (from, to int64, growth float64, ok bool) {
	after := kb[min(warm, len(kb)):]
	w := len(after) / 5
	if w < 1 {
		return 0, 0, 0, false
	}
	mean := func(s []int64) int64 {
		var sum int64
		for _, v := range s {
			sum += v
		}
		return sum / int64(len(s))
	}
	from, to = mean(after[:w]), mean(after[len(after)-w:])
	return from, to, float64(to-from) / float64(from) * 100, true
}

// formatSeries is the samples in MB, every step-th one.
func formatSeries(kb []int64, step int) string {
	var b strings.Builder
	for i := 0; i < len(kb); i += max(step, 1) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d", kb[i]/1024)
	}
	return b.String()
}

// seedWords make the soak's pre-seeded memories: varied enough that the
// keyword index has many terms, like real notes.
var seedWords = strings.Fields(`lighthouse harbour meeting garden project birthday concert travel recipe
	guitar lesson doctor invoice budget report marathon training novel movie family dinner holiday
	museum painting piano football swimming deadline launch release server database wedding puppy`)

// seedSoak imports n memories, spread over the users, through each
// owner's POST /api/memories/import (the same write path as a user's
// import: encrypted, indexed), so that the soak measures RSS on an
// instance already holding data, where what the load writes is a small
// part of the whole, rather than on an empty one whose every cache and
// index grows with the first thousands of writes.
func seedSoak(ctx context.Context, base string, users []user, n int) error {
	hc := &http.Client{Timeout: 5 * time.Minute}
	rng := rand.New(rand.NewPCG(uint64(n), 11)) //nolint:gosec // test data, not a secret
	per := (n + len(users) - 1) / len(users)
	for i, u := range users {
		k := min(per, n-i*per)
		if k <= 0 {
			break
		}
		var body bytes.Buffer
		for range k {
			words := make([]string, 12)
			for j := range words {
				words[j] = seedWords[rng.IntN(len(seedWords))]
			}
			line, err := json.Marshal(map[string]any{"id": uuidV4(), "text": "seeded note " + strings.Join(words, " "), "permission": "private"})
			if err != nil {
				return err
			}
			body.Write(line)
			body.WriteByte('\n')
		}
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/memories/import", &body)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+u.access)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("seed import: %w", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("seed import: HTTP %d: %s", resp.StatusCode, b)
		}
	}
	return nil
}

func uuidV4() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// isSeedText is a complete memory of seedSoak: its prefix and its 12 words.
func isSeedText(text string) bool {
	return strings.HasPrefix(text, "seeded note ") && len(strings.Fields(text)) == 14
}
