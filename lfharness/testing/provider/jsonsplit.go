package main

// A fast split of a JSON object into its members without decoding the values: loading aws's schema
// (5 MB of JSON) this way takes a few milliseconds, and each type's schema is decoded (and fully
// checked) by encoding/json only when used.

import (
	"encoding/json"
	"fmt"
)

// splitObject returns the members of the JSON object in raw, in document order. The values are
// slices of raw, checked only for balanced brackets and well-formed strings.
func splitObject(raw []byte) (map[string]json.RawMessage, error) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, fmt.Errorf("want a JSON object at offset %d", i)
	}
	out := map[string]json.RawMessage{}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return out, checkTrailing(raw, i+1)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return nil, fmt.Errorf("want a member name at offset %d", i)
		}
		end, err := skipString(raw, i)
		if err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(raw[i:end], &key); err != nil {
			return nil, fmt.Errorf("member name at offset %d: %w", i, err)
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return nil, fmt.Errorf("want ':' after member %q at offset %d", key, i)
		}
		i = skipSpace(raw, i+1)
		vend, err := skipValue(raw, i)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", key, err)
		}
		out[key] = json.RawMessage(raw[i:vend])
		i = skipSpace(raw, vend)
		if i >= len(raw) {
			return nil, fmt.Errorf("unexpected end of JSON in an object")
		}
		if raw[i] == '}' {
			return out, checkTrailing(raw, i+1)
		}
		if raw[i] != ',' {
			return nil, fmt.Errorf("want ',' or '}' after member %q at offset %d", key, i)
		}
		i = skipSpace(raw, i+1)
	}
}

func checkTrailing(raw []byte, i int) error {
	if i = skipSpace(raw, i); i != len(raw) {
		return fmt.Errorf("unexpected data after the JSON object at offset %d", i)
	}
	return nil
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the offset just after the string starting at raw[i] == '"'.
func skipString(raw []byte, i int) (int, error) {
	start := i
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at offset %d", start)
}

// skipValue returns the offset just after the value starting at raw[i].
func skipValue(raw []byte, i int) (int, error) {
	if i >= len(raw) {
		return 0, fmt.Errorf("unexpected end of JSON")
	}
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		var stack []byte // the closing brackets expected
		start := i
		for ; i < len(raw); i++ {
			switch c := raw[i]; c {
			case '"':
				end, err := skipString(raw, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{':
				stack = append(stack, '}')
			case '[':
				stack = append(stack, ']')
			case '}', ']':
				if stack[len(stack)-1] != c {
					return 0, fmt.Errorf("unbalanced brackets from offset %d: %q at offset %d", start, c, i)
				}
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced brackets from offset %d", start)
	}
	// number, true, false, null
	start := i
	for i < len(raw) && raw[i] != ',' && raw[i] != '}' && raw[i] != ']' && raw[i] != ' ' && raw[i] != '\n' && raw[i] != '\t' && raw[i] != '\r' {
		i++
	}
	if i == start {
		return 0, fmt.Errorf("want a value at offset %d", start)
	}
	return i, nil
}
