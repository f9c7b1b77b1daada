package memories

import (
	"encoding/json"
	"sync"
	"sync/atomic"
)

// encodedPage is a cached page's JSON, encoded once on first use. Each
// memory is encoded on its own and the page put together from the
// pieces, which is what encoding/json gives for the whole page (a
// ListResult has no encoder of its own: its memories are encoded as
// they are alone, joined by commas). A page refreshPage made from an
// older one takes the pieces of the memories it kept from that page's
// encoding instead of encoding them again: under a mix of reads and
// writes most pages served after a miss are such pages, and encoding a
// page of 20 memories whole was ~3% of the mixed load's CPU and ~10% of
// the bytes it allocated (docs/performance.md, "Hot path, round 11").
type encodedPage struct {
	once         sync.Once
	json, quoted []byte
	parts        []encodedPart // each memory's, in the page's order
	err          error
	done         atomic.Bool // parts can be read (set after once ran well)

	// a refreshed page: its memories from at on are base's first ones
	// (baseMems, to check), whose pieces it reuses; base was encoded
	// (done) when refreshPage linked it
	base     *encodedPage
	baseMems []*Memory
	at       int
}

// encodedPart is one memory's JSON, and that JSON as it reads inside a
// JSON string (escaped, without the quotes); both are slices of the
// page's json and quoted.
type encodedPart struct{ json, quoted []byte }

// Encoded returns r as JSON (what encoding/json.Marshal gives) and that
// JSON as a JSON string, encoded once for a page shared through the page
// cache; ok is false for a result that is not (encode it yourself). The
// slices are shared: do not modify them.
func (r *ListResult) Encoded() (structured, quoted []byte, ok bool) {
	if r.enc == nil {
		return nil, nil, false
	}
	e := r.enc
	e.once.Do(func() {
		e.err = e.encode(r)
		e.base, e.baseMems = nil, nil // the older page can go
		if e.err == nil {
			e.done.Store(true)
		}
	})
	if e.err != nil {
		return nil, nil, false
	}
	return e.json, e.quoted, true
}

// reused returns the piece of r's memory i that e's base holds, if any.
func (e *encodedPage) reused(r *ListResult, i int) (encodedPart, bool) {
	j := i - e.at
	if e.base == nil || j < 0 || j >= len(e.baseMems) || j >= len(e.base.parts) || e.baseMems[j] != r.Memories[i] {
		return encodedPart{}, false
	}
	return e.base.parts[j], true
}

// quoteInner is b encoded as a JSON string, without its quotes. JSON
// strings escape rune by rune, so the pieces of a text quoted apart,
// split between runes, join into the text quoted whole.
func quoteInner(b []byte) ([]byte, error) {
	q, err := json.Marshal(string(b))
	if err != nil {
		return nil, err
	}
	return q[1 : len(q)-1], nil
}

// encode sets e.json, e.quoted and e.parts for r.
func (e *encodedPage) encode(r *ListResult) error {
	if r.Memories == nil { // "memories": null; no pieces
		j, err := json.Marshal(r)
		if err != nil {
			return err
		}
		q, err := json.Marshal(string(j))
		e.json, e.quoted = j, q
		return err
	}
	parts := make([]encodedPart, len(r.Memories))
	size, qsize := 0, 0
	for i, m := range r.Memories {
		p, ok := e.reused(r, i)
		if !ok {
			j, err := json.Marshal(m)
			if err != nil {
				return err
			}
			q, err := quoteInner(j)
			if err != nil {
				return err
			}
			p = encodedPart{j, q}
		}
		parts[i] = p
		size += len(p.json) + 1
		qsize += len(p.quoted) + 1
	}
	tail := []byte("]}")
	if r.NextCursor != "" {
		c, err := json.Marshal(r.NextCursor)
		if err != nil {
			return err
		}
		tail = append(append([]byte(`],"next_cursor":`), c...), '}')
	}
	qtail, err := quoteInner(tail)
	if err != nil {
		return err
	}
	const head, qhead = `{"memories":[`, `"{\"memories\":[`
	js := make([]byte, 0, len(head)+size+len(tail))
	qs := make([]byte, 0, len(qhead)+qsize+len(qtail)+1)
	js, qs = append(js, head...), append(qs, qhead...)
	for i, p := range parts {
		if i > 0 {
			js, qs = append(js, ','), append(qs, ',')
		}
		js, qs = append(js, p.json...), append(qs, p.quoted...)
		// the piece now points into the page's own bytes
		parts[i] = encodedPart{js[len(js)-len(p.json) : len(js) : len(js)], qs[len(qs)-len(p.quoted) : len(qs) : len(qs)]}
	}
	js, qs = append(js, tail...), append(append(qs, qtail...), '"')
	e.json, e.quoted, e.parts = js, qs, parts
	return nil
}
