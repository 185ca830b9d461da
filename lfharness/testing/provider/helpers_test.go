package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// testSchema is testdata/schema.json: a small provider schema with every nesting mode.
func testSchema(t *testing.T) *ProviderSchema {
	t.Helper()
	s, err := ReadSchemaFile("testdata/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustGet(t *testing.T, set *SchemaSet, typeName string) *Schema {
	t.Helper()
	s, ok, err := set.Get(typeName)
	if err != nil || !ok {
		t.Fatalf("schema of %s: ok=%v err=%v", typeName, ok, err)
	}
	return s
}

// jsonValue is a value of type typ written as JSON (missing object attributes are null).
func jsonValue(t *testing.T, typ tftypes.Type, js string) tftypes.Value {
	t.Helper()
	v, err := ValueFromJSON(typ, []byte(js))
	if err != nil {
		t.Fatalf("test value %s: %v", js, err)
	}
	return v
}

var pathToken = regexp.MustCompile(`^(?:\.?([A-Za-z0-9_]+)|\[([0-9]+)\]|\["([^"]*)"\])`)

// valueAt navigates a path like a.b[0].c or m["k"].x (set elements by position).
func valueAt(t *testing.T, v tftypes.Value, path string) tftypes.Value {
	t.Helper()
	rest := path
	for rest != "" {
		m := pathToken.FindStringSubmatch(rest)
		if m == nil {
			t.Fatalf("bad test path %q at %q", path, rest)
		}
		rest = rest[len(m[0]):]
		if !v.IsKnown() || v.IsNull() {
			t.Fatalf("path %s: %q is not reachable (value is %s)", path, m[0], describe(v))
		}
		switch {
		case m[1] != "" || m[3] != "":
			key := m[1] + m[3]
			var fields map[string]tftypes.Value
			if err := v.As(&fields); err != nil {
				t.Fatalf("path %s: %v", path, err)
			}
			nv, ok := fields[key]
			if !ok {
				t.Fatalf("path %s: no %q", path, key)
			}
			v = nv
		default:
			i, _ := strconv.Atoi(m[2])
			var elems []tftypes.Value
			if err := v.As(&elems); err != nil {
				t.Fatalf("path %s: %v", path, err)
			}
			if i >= len(elems) {
				t.Fatalf("path %s: only %d elements", path, len(elems))
			}
			v = elems[i]
		}
	}
	return v
}

// describe is "unknown", "null" or the canonical form of a known value.
func describe(v tftypes.Value) string {
	switch {
	case !v.IsKnown():
		return "unknown"
	case v.IsNull():
		return "null"
	}
	return Canonical(v)
}

func mustDyn(t *testing.T, typ tftypes.Type, v tftypes.Value) *tfprotov6.DynamicValue {
	t.Helper()
	dv, err := tfprotov6.NewDynamicValue(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return &dv
}

func mustUndyn(t *testing.T, typ tftypes.Type, dv *tfprotov6.DynamicValue) tftypes.Value {
	t.Helper()
	if dv == nil {
		t.Fatal("no value returned")
	}
	v, err := dv.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func diagText(diags []*tfprotov6.Diagnostic) string {
	var parts []string
	for _, d := range diags {
		parts = append(parts, d.Summary+": "+d.Detail)
	}
	return strings.Join(parts, "\n")
}

func noDiags(t *testing.T, diags []*tfprotov6.Diagnostic) {
	t.Helper()
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", diagText(diags))
	}
}
