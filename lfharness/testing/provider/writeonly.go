package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"sort"

	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// WriteOnlyPrefix starts each line WriteOnlyRecord writes: a real provider sends write-only values to
// its API and forgets them, so tests can see what a write-only argument carried only here. Only
// SHA-256 digests are written, never a value (the values are secrets: the Kubernetes Secret's data_wo).
const WriteOnlyPrefix = "write-only: "

// writeOnlyRecord is one line: which resource type and attribute, and the digest of each value
// (for a map or object, of each element by key; for a single value, under the key "").
type writeOnlyRecord struct {
	Type      string            `json:"type"`
	Attribute string            `json:"attribute"`
	SHA256    map[string]string `json:"sha256"`
	Null      []string          `json:"null,omitempty"`
}

// WriteOnlyRecord writes one line per non-null write-only top-level attribute of config to w.
func WriteOnlyRecord(w io.Writer, typeName string, b *Block, config tftypes.Value) error {
	if config.IsNull() || !config.IsKnown() {
		return nil
	}
	var attrs map[string]tftypes.Value
	if err := config.As(&attrs); err != nil {
		return fmt.Errorf("write-only record of %s: reading the configuration: %w", typeName, err)
	}
	names := make([]string, 0, len(b.Attributes))
	for name, a := range b.Attributes {
		if a.WriteOnly {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		v, ok := attrs[name]
		if !ok || v.IsNull() || !v.IsKnown() {
			continue
		}
		rec := writeOnlyRecord{Type: typeName, Attribute: name, SHA256: map[string]string{}}
		if err := digestInto(&rec, v); err != nil {
			return fmt.Errorf("write-only record of %s.%s: %w", typeName, name, err)
		}
		line, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("write-only record of %s.%s: %w", typeName, name, err)
		}
		if _, err := fmt.Fprintf(w, "%s%s\n", WriteOnlyPrefix, line); err != nil {
			return fmt.Errorf("write-only record of %s.%s: writing: %w", typeName, name, err)
		}
	}
	return nil
}

func digestInto(rec *writeOnlyRecord, v tftypes.Value) error {
	t := v.Type()
	if t.Is(tftypes.Map{}) || t.Is(tftypes.Object{}) {
		var elems map[string]tftypes.Value
		if err := v.As(&elems); err != nil {
			return err
		}
		for k, e := range elems {
			if e.IsNull() {
				rec.Null = append(rec.Null, k)
				continue
			}
			d, err := digest(e)
			if err != nil {
				return fmt.Errorf("element %q: %w", k, err)
			}
			rec.SHA256[k] = d
		}
		sort.Strings(rec.Null)
		return nil
	}
	d, err := digest(v)
	if err != nil {
		return err
	}
	rec.SHA256[""] = d
	return nil
}

// digest is the SHA-256 of a string's bytes, a number's decimal text or a bool's "true"/"false".
func digest(v tftypes.Value) (string, error) {
	var text string
	switch {
	case v.Type().Is(tftypes.String):
		if err := v.As(&text); err != nil {
			return "", err
		}
	case v.Type().Is(tftypes.Number):
		var n big.Float
		if err := v.As(&n); err != nil {
			return "", err
		}
		text = n.Text('f', -1)
	case v.Type().Is(tftypes.Bool):
		var b bool
		if err := v.As(&b); err != nil {
			return "", err
		}
		text = fmt.Sprint(b)
	default:
		return "", fmt.Errorf("unsupported type %s", v.Type())
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:]), nil
}
