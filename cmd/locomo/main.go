// Command locomo measures retrieval quality on LoCoMo conversations:
// evidence recall@k of the vector store + embedder that Picard uses.
//
// Each turn is one memory ("<speaker>: <text>") of one user per
// conversation, stored in conversation order; each question is a search
// over that user's memories; a hit is relevant when its turn's dia_id is in
// the question's evidence. The data is not shipped: point -data at a copy
// (the development split lives in shared/data/locomo-dev beside the repo).
//
//	go run ./cmd/locomo -data ../shared/data/locomo-dev
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/picard-mcp/picard/vectorstore"
)

type turn struct {
	Speaker string `json:"speaker"`
	DiaID   string `json:"dia_id"`
	Text    string `json:"text"`
}

type qa struct {
	Question string   `json:"question"`
	Evidence []string `json:"evidence"`
	Category int      `json:"category"`
}

var sessionKey = regexp.MustCompile(`^session_(\d+)$`)

func main() {
	data := flag.String("data", "../shared/data/locomo-dev", "folder of LoCoMo conversation JSON files")
	k := flag.Int("k", 10, "recall@k")
	flag.Parse()
	files, err := filepath.Glob(filepath.Join(*data, "*.json"))
	if err != nil || len(files) == 0 {
		log.Fatalf("no conversation files in %s (-data)", *data)
	}
	sort.Strings(files)
	ctx := context.Background()
	emb := vectorstore.NewLocalEmbedder()
	dir, err := os.MkdirTemp("", "locomo-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := vectorstore.OpenEmbedded(filepath.Join(dir, "vectors.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	fmt.Printf("embedder %s, recall@%d\n\n", emb.Space(), *k)
	fmt.Printf("%-14s %7s %9s %12s %14s %10s\n", "conversation", "turns", "questions", "recall(all)", "recall(no c5)", "query p50")
	var sumAll, sumNo5 float64
	var nAll, nNo5 int
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			log.Fatal(err)
		}
		var conv map[string]json.RawMessage
		if err := json.Unmarshal(raw, &conv); err != nil {
			log.Fatalf("%s: %v", f, err)
		}
		owner := filepath.Base(f)
		var turns []turn
		var sessions []int
		for key := range conv {
			if m := sessionKey.FindStringSubmatch(key); m != nil {
				n, _ := strconv.Atoi(m[1])
				sessions = append(sessions, n)
			}
		}
		sort.Ints(sessions)
		for _, n := range sessions {
			var ts []turn
			if err := json.Unmarshal(conv["session_"+strconv.Itoa(n)], &ts); err != nil {
				log.Fatalf("%s session %d: %v", f, n, err)
			}
			turns = append(turns, ts...)
		}
		texts := make([]string, len(turns))
		for i, t := range turns {
			texts[i] = t.Speaker + ": " + t.Text
		}
		vecs, err := emb.Embed(ctx, texts)
		if err != nil {
			log.Fatal(err)
		}
		items := make([]vectorstore.Item, len(turns))
		base := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
		for i, t := range turns {
			items[i] = vectorstore.Item{ID: owner + "/" + t.DiaID, Vector: vecs[i],
				Meta: vectorstore.Meta{OwnerID: owner, Permission: "private", CreatedAt: base.Add(time.Duration(i) * time.Minute)}}
		}
		if err := store.Upsert(ctx, emb.Space(), items...); err != nil {
			log.Fatal(err)
		}
		var qas []qa
		if err := json.Unmarshal(conv["qa"], &qas); err != nil {
			log.Fatalf("%s qa: %v", f, err)
		}
		var cAll, cNo5 float64
		var qAll, qNo5 int
		var lat []time.Duration
		for _, q := range qas {
			if len(q.Evidence) == 0 {
				continue
			}
			qv, err := emb.Embed(ctx, []string{q.Question})
			if err != nil {
				log.Fatal(err)
			}
			start := time.Now()
			hits, err := store.Search(ctx, vectorstore.Query{Space: emb.Space(), Vector: qv[0], Limit: *k,
				Filter: vectorstore.Filter{Any: []vectorstore.Clause{{OwnerID: owner}}, Now: time.Now()}})
			lat = append(lat, time.Since(start))
			if err != nil {
				log.Fatal(err)
			}
			got := map[string]bool{}
			for _, h := range hits {
				got[h.ID] = true
			}
			found := 0
			for _, e := range q.Evidence {
				if got[owner+"/"+e] {
					found++
				}
			}
			r := float64(found) / float64(len(q.Evidence))
			cAll += r
			qAll++
			if q.Category != 5 {
				cNo5 += r
				qNo5++
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		fmt.Printf("%-14s %7d %9d %12.3f %14.3f %10s\n", owner, len(turns), qAll, cAll/float64(qAll), cNo5/float64(max(qNo5, 1)), lat[len(lat)/2].Round(time.Microsecond))
		sumAll += cAll
		sumNo5 += cNo5
		nAll += qAll
		nNo5 += qNo5
	}
	fmt.Printf("%-14s %7s %9d %12.3f %14.3f\n", "all", "", nAll, sumAll/float64(nAll), sumNo5/float64(max(nNo5, 1)))
}
