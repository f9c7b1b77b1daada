package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecode: any body either decodes or fails with a *FieldError; what
// decodes is valid JSON.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":"x","b":[1,2]}`, `{"a":1}{}`, `[1]`, `{"a":`, `{"c":true}`, "\xff", `{"a":1e400}`} {
		f.Add([]byte(s))
	}
	type target struct {
		A int      `json:"a"`
		B []int    `json:"b"`
		S string   `json:"s"`
		P *float64 `json:"p"`
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v target
		err := Decode(data, &v)
		if err == nil {
			// only an object, or an empty or null body (read as {}), decodes
			if b := bytes.TrimSpace(data); len(b) > 0 && string(b) != "null" && (!json.Valid(b) || b[0] != '{') {
				t.Fatalf("decoded %q", data)
			}
			return
		}
		if fe := (*FieldError)(nil); !errors.As(err, &fe) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
	})
}
