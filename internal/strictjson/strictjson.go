// Package strictjson decodes request bodies strictly and turns decoding
// failures into errors that name the offending field.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// FieldError is a decoding failure attributable to one field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Decode fills v from data: unknown fields, wrong types, trailing data and
// a non-object body are errors naming the field. Empty data decodes as {}.
func Decode(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		data = []byte("{}")
	}
	if data[0] != '{' {
		return &FieldError{Message: "the body must be a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describe(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{Message: "unexpected data after the JSON object"}
	}
	return nil
}

func describe(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &FieldError{Field: te.Field, Message: "must be " + jsonType(te.Type.String()) + ", not " + te.Value}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Message: fmt.Sprintf("malformed JSON at byte %d", se.Offset)}
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		f := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		return &FieldError{Field: f, Message: "unknown field"}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Message: "truncated JSON"}
	}
	return &FieldError{Message: strings.TrimPrefix(err.Error(), "json: ")}
}

func jsonType(goType string) string {
	switch {
	case goType == "string" || goType == "*string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "bool" || goType == "*bool":
		return "a boolean"
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "float"):
		return "a number"
	default:
		return "a " + goType
	}
}
