package main

import (
	"fmt"
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
