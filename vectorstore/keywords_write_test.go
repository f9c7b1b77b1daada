package vectorstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKeywordWritesKeepIndexExact drives both keyword indexes through
// random batches of new memories (in and out of time order), re-indexed
// ones (new text, only a new permission, sharing or expiry, a new place in
// the timeline), duplicates within a batch and deletes, and after every
// batch compares everything a search reads with what the memories say:
// each memory's row and neighbours in its owner's timeline, its postings
// and shares, every term's document frequency and the collection stats.
func TestKeywordWritesKeepIndexExact(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) *sqlKeywords{
		"sqlite":   func(t *testing.T) *sqlKeywords { k, _ := openSQLiteKW(t); return k },
		"postgres": openPGKW,
		"sqlite, relinked place by place": func(t *testing.T) *sqlKeywords {
			budget := relinkBudget
			relinkBudget = func(int) int { return 1 }
			t.Cleanup(func() { relinkBudget = budget })
			k, _ := openSQLiteKW(t)
			return k
		},
	} {
		t.Run(name, func(t *testing.T) {
			k := open(t)
			h := testHasher(t)
			ctx := context.Background()
			r := mrand.New(mrand.NewPCG(3, 5))
			vocab := strings.Fields("lake heron dinner music books garden work travel school coffee train city rain")
			text := func() string {
				var w []string
				for range 1 + r.IntN(6) {
					w = append(w, vocab[r.IntN(len(vocab))])
				}
				return strings.Join(w, " ")
			}
			meta := func(owner string, created time.Time) Meta {
				m := Meta{OwnerID: owner, Permission: []string{"private", "public", "shared"}[r.IntN(3)], CreatedAt: created}
				if m.Permission == "shared" {
					m.SharedUsers = []string{fmt.Sprintf("user-%d", r.IntN(3))}
					if r.IntN(2) == 0 {
						m.SharedGroups = []string{"g1", "g2"}[:1+r.IntN(2)]
					}
				}
				if r.IntN(4) == 0 {
					m.ExpiresAt = kwBase.Add(time.Duration(1+r.IntN(100)) * time.Hour)
				}
				return m
			}
			model := map[string]KeywordDoc{}
			nextID := 0
			for round := range 40 {
				var batch []KeywordDoc
				var deletes []string
				ids := slices.Sorted(maps.Keys(model))
				for range 1 + r.IntN(12) {
					switch x := r.IntN(10); {
					case x < 4 || len(ids) == 0: // new, at the end or back in time
						nextID++
						owner := fmt.Sprintf("owner-%d", r.IntN(3))
						created := kwBase.Add(time.Duration(round*100+r.IntN(100)) * time.Second)
						if r.IntN(3) == 0 {
							created = kwBase.Add(time.Duration(r.IntN(round*100+1)) * time.Second)
						}
						batch = append(batch, doc(h, fmt.Sprintf("m%03d", nextID), text(), meta(owner, created)))
					case x < 6: // new text, same place
						o := model[ids[r.IntN(len(ids))]]
						batch = append(batch, doc(h, o.ID, text(), o.Meta))
					case x < 8: // only permission, sharing or expiry
						o := model[ids[r.IntN(len(ids))]]
						o.Meta = meta(o.Meta.OwnerID, o.Meta.CreatedAt)
						batch = append(batch, o)
					case x < 9: // a new place (another time or owner)
						o := model[ids[r.IntN(len(ids))]]
						o.Meta = meta(fmt.Sprintf("owner-%d", r.IntN(3)), kwBase.Add(time.Duration(r.IntN((round+1)*100))*time.Second))
						batch = append(batch, o)
					default:
						deletes = append(deletes, ids[r.IntN(len(ids))])
					}
				}
				if len(batch) > 0 {
					if err := k.IndexDocs(ctx, batch...); err != nil {
						t.Fatal(err)
					}
					for _, d := range batch { // the last of an id wins
						model[d.ID] = d
					}
				}
				if len(deletes) > 0 {
					if err := k.DeleteDocs(ctx, deletes...); err != nil {
						t.Fatal(err)
					}
					for _, id := range deletes {
						delete(model, id)
					}
				}
				if diff := compareIndex(t, k, model); diff != "" {
					t.Fatalf("round %d: the index differs from its memories:\n%s", round, diff)
				}
			}
		})
	}
}

// compareIndex describes every difference between k's tables and model.
func compareIndex(t *testing.T, k *sqlKeywords, model map[string]KeywordDoc) string {
	t.Helper()
	ctx := context.Background()
	var diffs []string
	differ := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	query := func(q string, each func(*sql.Rows) error) {
		rows, err := k.db.QueryContext(ctx, k.sql(q))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	// expected neighbours: each owner's memories by (created, id)
	byOwner := map[string][]KeywordDoc{}
	for _, d := range model {
		byOwner[d.Meta.OwnerID] = append(byOwner[d.Meta.OwnerID], d)
	}
	wantNb := map[string][4]string{}
	for _, ds := range byOwner {
		slices.SortFunc(ds, func(x, y KeywordDoc) int {
			return cmp.Or(x.Meta.CreatedAt.Compare(y.Meta.CreatedAt), cmp.Compare(x.ID, y.ID))
		})
		at := func(i int) string {
			if i < 0 || i >= len(ds) {
				return ""
			}
			return ds[i].ID
		}
		for i, d := range ds {
			wantNb[d.ID] = [4]string{at(i - 1), at(i - 2), at(i + 1), at(i + 2)}
		}
	}
	idOf := map[int64]string{}
	type docRow struct {
		owner, perm     string
		expires         sql.NullInt64
		created, length int64
		nb              [4]sql.NullInt64
	}
	got := map[string]docRow{}
	query(`SELECT k, id, owner_id, permission, expires_at, created_at, len, prev1, prev2, next1, next2 FROM {docs}`, func(rows *sql.Rows) error {
		var key int64
		var id string
		var d docRow
		if err := rows.Scan(&key, &id, &d.owner, &d.perm, &d.expires, &d.created, &d.length, &d.nb[0], &d.nb[1], &d.nb[2], &d.nb[3]); err != nil {
			return err
		}
		idOf[key], got[id] = id, d
		return nil
	})
	var totalLen int64
	df := map[int64]int{}
	for id, m := range model {
		totalLen += int64(m.Len)
		for term := range m.Terms {
			df[term]++
		}
		d, ok := got[id]
		if !ok {
			differ("%s: missing", id)
			continue
		}
		wantExp := sql.NullInt64{}
		if !m.Meta.ExpiresAt.IsZero() {
			wantExp = sql.NullInt64{Int64: m.Meta.ExpiresAt.UnixMicro(), Valid: true}
		}
		if d.owner != m.Meta.OwnerID || d.perm != m.Meta.Permission || d.expires != wantExp || d.created != m.Meta.CreatedAt.UnixMicro() || d.length != int64(m.Len) {
			differ("%s: row %+v, want %+v", id, d, m.Meta)
		}
		var nb [4]string
		for i, v := range d.nb {
			if v.Valid {
				nb[i] = idOf[v.Int64]
				if nb[i] == "" {
					nb[i] = fmt.Sprintf("dangling key %d", v.Int64)
				}
			}
		}
		if nb != wantNb[id] {
			differ("%s: neighbours (prev1 prev2 next1 next2) %q, want %q", id, nb, wantNb[id])
		}
	}
	for id := range got {
		if _, ok := model[id]; !ok {
			differ("%s: still indexed after its delete", id)
		}
	}
	postings := map[string]map[int64]int{}
	query(`SELECT doc, term, tf FROM {postings}`, func(rows *sql.Rows) error {
		var key, term int64
		var tf int
		if err := rows.Scan(&key, &term, &tf); err != nil {
			return err
		}
		id := idOf[key]
		if postings[id] == nil {
			postings[id] = map[int64]int{}
		}
		postings[id][term] = tf
		return nil
	})
	for id, m := range model {
		if !maps.Equal(postings[id], m.Terms) {
			differ("%s: postings %v, want %v", id, postings[id], m.Terms)
		}
		delete(postings, id)
	}
	if len(postings) > 0 {
		differ("postings of no memory: %v", postings)
	}
	shares := map[string][]string{}
	query(`SELECT doc, kind, principal FROM {shares} ORDER BY kind, principal`, func(rows *sql.Rows) error {
		var key int64
		var kind, p string
		if err := rows.Scan(&key, &kind, &p); err != nil {
			return err
		}
		shares[idOf[key]] = append(shares[idOf[key]], kind+":"+p)
		return nil
	})
	for id, m := range model {
		var want []string
		for _, g := range m.Meta.SharedGroups {
			want = append(want, "g:"+g)
		}
		for _, u := range m.Meta.SharedUsers {
			want = append(want, "u:"+u)
		}
		if !slices.Equal(shares[id], want) {
			differ("%s: shares %v, want %v", id, shares[id], want)
		}
		delete(shares, id)
	}
	if len(shares) > 0 {
		differ("shares of no memory: %v", shares)
	}
	gotDF := map[int64]int{}
	query(`SELECT term, df FROM {terms}`, func(rows *sql.Rows) error {
		var term int64
		var n int
		err := rows.Scan(&term, &n)
		gotDF[term] = n
		return err
	})
	if !maps.Equal(gotDF, df) {
		differ("document frequencies %v, want %v", gotDF, df)
	}
	var n, total int64
	query(`SELECT n, total_len FROM {stats}`, func(rows *sql.Rows) error { return rows.Scan(&n, &total) })
	if n != int64(len(model)) || total != totalLen {
		differ("stats n=%d total_len=%d, want %d and %d", n, total, len(model), totalLen)
	}
	return strings.Join(diffs, "\n")
}

// TestWriteSQLPlaceholders: write statements bind by position on SQLite
// only when their placeholders run $1, $2, … in order.
func TestWriteSQLPlaceholders(t *testing.T) {
	k, _ := openSQLiteKW(t)
	for in, want := range map[string]string{
		`INSERT INTO {terms} (term, df) VALUES ($1, $2), ($3, $4)`: `INSERT INTO kw_terms (term, df) VALUES (?, ?), (?, ?)`,
		`SELECT $2, $1`:            `SELECT ?2, ?1`,
		`SELECT $1, $1`:            `SELECT ?1, ?1`,
		`UPDATE {stats} SET n = 0`: `UPDATE kw_stats SET n = 0`,
	} {
		if got := k.wsql(in); got != want {
			t.Errorf("wsql(%q) = %q, want %q", in, got, want)
		}
	}
}

// cpuTime is the process's CPU time so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKeywordIndexDocs measures the keyword index's write per memory
// as Picard's indexer makes it: batches of 128 memories of 13 words, 10
// owners, into an index of 10k memories: wall time (us/doc, with fsyncs)
// and the process's CPU time (cpu-us/doc) per memory.
//
//	go test -run '^$' -bench KeywordIndexDocs ./vectorstore/
func BenchmarkKeywordIndexDocs(b *testing.B) {
	const base = 10_000
	batch := 128
	vocab := strings.Fields(`apple river mountain coffee meeting garden project birthday concert
		travel paris london recipe pasta guitar lesson doctor dentist invoice budget report marathon
		training book novel movie family sister brother friend dinner lunch breakfast holiday beach`)
	r := mrand.New(mrand.NewPCG(1, 2))
	h := testHasher(b)
	text := func() string {
		w := []string{"remember"}
		for range 12 {
			w = append(w, vocab[r.IntN(len(vocab))])
		}
		return strings.Join(w, " ")
	}
	mk := func(i int) KeywordDoc {
		return doc(h, fmt.Sprintf("m%07d", i), text(), Meta{OwnerID: fmt.Sprintf("owner-%d", i%10), Permission: "private", CreatedAt: kwBase.Add(time.Duration(i) * time.Millisecond)})
	}
	setup := func(b *testing.B) (*sqlKeywords, []KeywordDoc) {
		k, err := openSQLiteKeywords(b.TempDir() + "/kw.db")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { k.Close() })
		docs := make([]KeywordDoc, base)
		for i := range docs {
			docs[i] = mk(i)
		}
		indexAll(b, k, docs)
		return k, docs
	}
	run := func(b *testing.B, k *sqlKeywords, next func(i int) KeywordDoc) {
		b.ResetTimer()
		cpu0 := cpuTime()
		n := 0
		for i := 0; i < b.N; i++ {
			docs := make([]KeywordDoc, batch)
			for j := range docs {
				docs[j] = next(n)
				n++
			}
			if err := k.IndexDocs(context.Background(), docs...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "us/doc")
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-us/doc")
	}
	b.Run("new", func(b *testing.B) {
		k, _ := setup(b)
		run(b, k, func(i int) KeywordDoc { return mk(base + i) })
	})
	// passes of fewer memories, as the indexer makes while searches keep
	// asking for the writes before them: the share of a pass's fixed cost
	// (its transaction, relinking, stats row, synchronous commit)
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("new/batch=%d", n), func(b *testing.B) {
			defer func(n int) { batch = n }(batch)
			batch = n
			k, _ := setup(b)
			run(b, k, func(i int) KeywordDoc { return mk(base + i) })
		})
	}
	b.Run("new text", func(b *testing.B) {
		k, docs := setup(b)
		run(b, k, func(i int) KeywordDoc {
			d := docs[r.IntN(len(docs))]
			return doc(h, d.ID, text(), d.Meta)
		})
	})
	b.Run("permission", func(b *testing.B) {
		k, docs := setup(b)
		run(b, k, func(i int) KeywordDoc {
			d := docs[r.IntN(len(docs))]
			d.Meta.Permission = []string{"public", "private"}[i%2]
			return d
		})
	})
}

// TestKeywordWritesOpenNoStatementJournal: no statement of the SQLite
// keyword index's write path may abort half-way (an OP_Halt or
// OP_HaltIfNull with the ABORT resolution in its program): SQLite gives
// such a statement, inside a transaction, a statement journal, whose
// memory modernc's allocator maps and unmaps at every statement (see
// exec). Every statement of a run through every kind of write is checked
// with EXPLAIN.
func TestKeywordWritesOpenNoStatementJournal(t *testing.T) {
	k, _ := openSQLiteKW(t)
	ctx := context.Background()
	h := testHasher(t)
	mayAbort := func(q string) []string {
		t.Helper()
		n := strings.Count(q, "?")
		if m := regexp.MustCompile(`\?(\d+)`).FindAllStringSubmatch(q, -1); m != nil {
			n = 0
			for _, x := range m {
				v, _ := strconv.Atoi(x[1])
				n = max(n, v)
			}
		}
		rows, err := k.db.QueryContext(ctx, "EXPLAIN "+q, make([]any, n)...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		defer rows.Close()
		var aborts []string
		for rows.Next() {
			var addr, p1, p2, p3, p5 int64
			var op string
			var p4, comment any
			if err := rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
				t.Fatal(err)
			}
			const oeAbort = 2
			if (op == "Halt" || op == "HaltIfNull") && p1 != 0 && p2 == oeAbort {
				aborts = append(aborts, fmt.Sprintf("%d %s %v", addr, op, p4))
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return aborts
	}
	// the check sees the statement journal of a plain multi-row insert
	if a := mayAbort(k.wsql(`INSERT INTO {postings} (term, doc, tf) VALUES ($1, $2, $3), ($4, $5, $6)`)); len(a) == 0 {
		t.Fatal("EXPLAIN shows no ABORT in a multi-row INSERT: the check cannot see statement journals")
	}

	seen := map[string]bool{}
	k.onWrite = func(q string) { seen[q] = true }
	m := func(owner string, sec int, perm string) Meta {
		x := Meta{OwnerID: owner, Permission: perm, CreatedAt: kwBase.Add(time.Duration(sec) * time.Second)}
		if perm == "shared" {
			x.SharedUsers, x.SharedGroups = []string{"u1", "u2"}, []string{"g1"}
		}
		return x
	}
	steps := [][]KeywordDoc{
		{doc(h, "a", "lake heron dinner", m("o1", 10, "shared")), doc(h, "b", "music books", m("o1", 20, "private")),
			doc(h, "c", "garden work", m("o2", 5, "public")), doc(h, "d", "lake music", m("o1", 15, "public"))},
		// new text at the same place; only a new permission; a new place; back in time
		{doc(h, "a", "lake coffee train", m("o1", 10, "shared")), doc(h, "b", "music books", m("o1", 20, "shared")),
			doc(h, "c", "garden work", m("o1", 30, "public")), doc(h, "e", "rain city", m("o1", 1, "private"))},
	}
	for _, docs := range steps {
		if err := k.IndexDocs(ctx, docs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.DeleteDocs(ctx, "d", "e"); err != nil {
		t.Fatal(err)
	}
	if err := k.ResetKeywords(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"INSERT OR FAIL INTO kw_docs", "INSERT OR FAIL INTO kw_postings", "INSERT OR FAIL INTO kw_shares",
		"kw_terms", "SET permission", "SET prev1", "DELETE FROM kw_postings", "next_k"} {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(seen)), func(q string) bool { return strings.Contains(q, want) }) {
			t.Errorf("no write statement ran with %q", want)
		}
	}
	for _, q := range slices.Sorted(maps.Keys(seen)) {
		if a := mayAbort(q); len(a) > 0 {
			t.Errorf("statement may abort half-way, so it opens a statement journal (%s):\n%s", strings.Join(a, "; "), q)
		}
	}
}

// TestKeywordWritesRunPreparedStatements: every statement of the SQLite
// keyword index's write path, whatever the number of rows a write has, is
// one of the statements prepared before the first write (parsing a fresh
// multi-row statement per write was most of a write's CPU), and the index
// still holds exactly what was written.
func TestKeywordWritesRunPreparedStatements(t *testing.T) {
	k, _ := openSQLiteKW(t)
	ctx := context.Background()
	h := testHasher(t)
	var seen []string
	k.onWrite = func(q string) { seen = append(seen, q) }
	words := strings.Fields("lake heron dinner music books garden work rain city coffee train river stone bread salt")
	var docs []KeywordDoc
	for i := range 157 { // rows of every piece size, and more than one of the largest
		text := fmt.Sprintf("%s %s %s note%d", words[i%len(words)], words[(i*7)%len(words)], words[(i*3+1)%len(words)], i)
		m := Meta{OwnerID: fmt.Sprintf("o%d", i%3), Permission: "shared", SharedUsers: []string{"u1"}, SharedGroups: []string{"g1"},
			CreatedAt: kwBase.Add(time.Duration(i) * time.Second)}
		docs = append(docs, doc(h, fmt.Sprintf("m%03d", i), text, m))
	}
	if err := k.IndexDocs(ctx, docs...); err != nil {
		t.Fatal(err)
	}
	prepared := len(k.wstmts)
	// new texts for 37 of them, 5 deleted, 3 new
	for i := 0; i < 37; i++ {
		docs[i] = doc(h, docs[i].ID, fmt.Sprintf("changed %s text%d", words[i%len(words)], i), docs[i].Meta)
	}
	if err := k.IndexDocs(ctx, docs[:37]...); err != nil {
		t.Fatal(err)
	}
	if err := k.DeleteDocs(ctx, "m040", "m041", "m042", "m100", "m156"); err != nil {
		t.Fatal(err)
	}
	more := []KeywordDoc{doc(h, "n1", "heron lake", Meta{OwnerID: "o1", Permission: "private", CreatedAt: kwBase.Add(time.Hour)}),
		doc(h, "n2", "bread", Meta{OwnerID: "o2", Permission: "public", CreatedAt: kwBase.Add(time.Minute)}),
		doc(h, "n3", "salt stone", Meta{OwnerID: "o0", Permission: "private", CreatedAt: kwBase})}
	if err := k.IndexDocs(ctx, more...); err != nil {
		t.Fatal(err)
	}
	if len(seen) == 0 {
		t.Fatal("no write statement seen")
	}
	for _, q := range seen {
		if _, ok := k.wstmts[q]; !ok {
			t.Fatalf("write statement not prepared in advance:\n%s", q)
		}
	}
	if len(k.wstmts) != prepared {
		t.Fatalf("%d prepared write statements after more writes, %d after the first", len(k.wstmts), prepared)
	}
	// the index holds exactly what was written
	model := map[string]KeywordDoc{}
	for _, d := range append(docs, more...) {
		model[d.ID] = d
	}
	for _, id := range []string{"m040", "m041", "m042", "m100", "m156"} {
		delete(model, id)
	}
	if diff := compareIndex(t, k, model); diff != "" {
		t.Fatalf("the index differs from its memories:\n%s", diff)
	}
}

// TestKeywordWriteStatementsBindNoBareLimit checks that no prepared
// SQLite statement of the write path has a bare parameter as its LIMIT:
// SQLite reads such a parameter's value while planning and re-prepares
// the statement each time it is bound again, so it would be parsed and
// planned on every run (see windowFromSQL).
func TestKeywordWriteStatementsBindNoBareLimit(t *testing.T) {
	k, _ := openSQLiteKW(t)
	if err := k.prepareWrites(context.Background()); err != nil {
		t.Fatal(err)
	}
	bare := regexp.MustCompile(`(?i)\bLIMIT\s+\?`)
	limits := 0
	for q := range k.wstmts {
		if strings.Contains(strings.ToUpper(q), "LIMIT") {
			limits++
		}
		if bare.MatchString(q) {
			t.Errorf("statement binds a bare LIMIT parameter: %s", q)
		}
	}
	if limits == 0 {
		t.Fatal("no prepared statement has a LIMIT: the check sees nothing")
	}
}
