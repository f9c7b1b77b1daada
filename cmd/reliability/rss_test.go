package main

import "testing"

// TestRSSGrowth: the soak's verdict on memory compares the start and the
// end of the curve after the warm-up, so a leak fails it and a single
// spike or the warm-up's own climb does not.
func TestRSSGrowth(t *testing.T) {
	flat := []int64{100, 150, 190, 200, 200, 210, 200, 205, 200, 200, 205, 200}
	spike := []int64{100, 150, 190, 200, 200, 200, 200, 400, 200, 200, 200, 200}
	leak := []int64{100, 150, 190, 200, 210, 220, 230, 240, 250, 260, 270, 280}
	for _, tc := range []struct {
		name     string
		kb       []int64
		warm     int
		min, max float64
		ok       bool
	}{
		{"flat after the warm-up", flat, 3, 0, 5, true},
		{"one spike in the middle", spike, 3, 0, 0.1, true},
		{"steady climb", leak, 3, 35, 45, true},
		{"too few samples", []int64{100, 200, 300}, 2, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, g, ok := rssGrowth(tc.kb, tc.warm)
			if ok != tc.ok || (ok && (g < tc.min || g > tc.max)) {
				t.Errorf("growth %.1f%% ok=%v; want %v..%v%% ok=%v", g, ok, tc.min, tc.max, tc.ok)
			}
		})
	}
}
