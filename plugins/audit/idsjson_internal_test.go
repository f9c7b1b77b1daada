package audit

import (
	"encoding/json"
	"testing"
)

// TestIDsJSONAsMarshal: the memory ids column is the JSON json.Marshal
// writes, whatever the ids hold (the listing takes it apart with SQLite's
// json_each).
func TestIDsJSONAsMarshal(t *testing.T) {
	for _, ids := range [][]string{
		nil,
		{},
		{"0196f6a4-7c1e-7b3a-9c2d-1e2f3a4b5c6d"},
		{"0196f6a4-7c1e-7b3a-9c2d-1e2f3a4b5c6d", "abc_DEF-123", ""},
		{`quote"d`, `back\\slash`, "tab\tnew\nline", "<html>&", "ünïcödé", "\u2028", "\x00\x7f"},
		{"plain", `then"quoted`},
	} {
		want, err := json.Marshal(ids)
		if err != nil {
			t.Fatal(err)
		}
		got, err := idsJSON(ids)
		if err != nil || got != string(want) {
			t.Errorf("idsJSON(%q) = %s, %v; json.Marshal gives %s", ids, got, err, want)
		}
	}
}
