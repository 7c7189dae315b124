package recall

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// The decoders in this package read Recall.ai's JSON through json.RawMessage
// and the small accessors below instead of strict structs: Recall changes
// field types between API generations (a string here, an object there, null
// for absent), and a field of an unexpected type must leave that one field
// empty rather than fail the whole payload.

// object decodes raw as a JSON object. It returns nil for anything else
// (null, arrays, scalars, invalid JSON).
func object(raw json.RawMessage) map[string]json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil
	}
	return m
}

// array decodes raw as a JSON array. It returns nil for anything else.
func array(raw json.RawMessage) []json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil
	}
	return a
}

// path walks nested objects: path(m, "data", "bot", "id") is m.data.bot.id.
// It returns nil when any step is missing or not an object.
func path(m map[string]json.RawMessage, keys ...string) json.RawMessage {
	for i, k := range keys {
		v, ok := m[k]
		if !ok {
			return nil
		}
		if i == len(keys)-1 {
			return v
		}
		m = object(v)
		if m == nil {
			return nil
		}
	}
	return nil
}

// scalar renders a JSON scalar as a string: strings as themselves, numbers as
// their literal text (100 → "100"), booleans as "true"/"false". Null,
// objects, arrays and invalid JSON give "".
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return ""
		}
		return s
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return ""
		}
		return n.String()
	case bytes.Equal(raw, []byte("true")), bytes.Equal(raw, []byte("false")):
		return string(raw)
	}
	return ""
}

// number reads a finite JSON number, or a string holding one. Anything else
// (including "NaN" and out-of-range values) gives ok == false.
func number(raw json.RawMessage) (float64, bool) {
	s := strings.TrimSpace(scalar(raw))
	if s == "" || s == "true" || s == "false" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// boolean reports whether raw is JSON true (or the string "true").
func boolean(raw json.RawMessage) bool {
	return scalar(raw) == "true"
}

// stringMap decodes a flat JSON object into string values, stringifying
// numbers and booleans. Null values are dropped; nested objects and arrays
// are kept as their compact JSON text. It returns nil when raw is not an
// object.
func stringMap(raw json.RawMessage) map[string]string {
	m := object(raw)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		v = bytes.TrimSpace(v)
		if len(v) == 0 || bytes.Equal(v, []byte("null")) {
			continue
		}
		if v[0] == '{' || v[0] == '[' {
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				continue
			}
			out[k] = buf.String()
			continue
		}
		out[k] = scalar(v)
	}
	return out
}

// timestampLayouts are the layouts Recall's timestamps have been seen in:
// RFC 3339 with an offset ("2025-03-04T15:02:11.482913+00:00", "…Z") and,
// defensively, without one (read as UTC).
var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
}

// timestamp parses a Recall timestamp string. It returns the zero time when
// raw is absent, not a string, or in no known layout.
func timestamp(raw json.RawMessage) time.Time {
	s := strings.TrimSpace(scalar(raw))
	if s == "" {
		return time.Time{}
	}
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
