package main

import (
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

func TestParseCtyType(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want tftypes.Type
		err  string
	}{
		{spec: `"string"`, want: tftypes.String},
		{spec: `"number"`, want: tftypes.Number},
		{spec: `"bool"`, want: tftypes.Bool},
		{spec: `"dynamic"`, want: tftypes.DynamicPseudoType},
		{spec: `["list","string"]`, want: tftypes.List{ElementType: tftypes.String}},
		{spec: `["set","number"]`, want: tftypes.Set{ElementType: tftypes.Number}},
		{spec: `["map",["set","number"]]`, want: tftypes.Map{ElementType: tftypes.Set{ElementType: tftypes.Number}}},
		{spec: `["object",{"a":"string","b":["list","bool"]}]`, want: tftypes.Object{AttributeTypes: map[string]tftypes.Type{"a": tftypes.String, "b": tftypes.List{ElementType: tftypes.Bool}}}},
		{spec: `["object",{"a":"string"},["a"]]`, want: tftypes.Object{AttributeTypes: map[string]tftypes.Type{"a": tftypes.String}, OptionalAttributes: map[string]struct{}{"a": {}}}},
		{spec: `["tuple",["string","number"]]`, want: tftypes.Tuple{ElementTypes: []tftypes.Type{tftypes.String, tftypes.Number}}},
		{spec: `"integer"`, err: `unknown primitive type "integer"`},
		{spec: `["list"]`, err: "invalid type specification"},
		{spec: `["frob","string"]`, err: `unknown type kind "frob"`},
		{spec: `["object",{"a":"strin"}]`, err: "object attribute a"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseCtyType([]byte(tc.spec))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseSchemaErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, typeName string
		want                []string
	}{
		{name: "not json", doc: `nope`, want: []string{"not a provider schema document"}},
		{name: "bad provider block", doc: `{"provider": {"block": {"attributes": {"region": {"type": "strng"}}}}}`,
			want: []string{"provider: attribute region", `"strng"`}},
		{name: "bad resource attribute", typeName: "x_thing",
			doc:  `{"resource_schemas": {"x_thing": {"block": {"block_types": {"b": {"nesting_mode": "list", "block": {"attributes": {"a": {"type": ["list"]}}}}}}}}}`,
			want: []string{"test.json", "resource_schemas.x_thing: block b: attribute a", "invalid type specification"}},
		{name: "bad nesting mode", typeName: "x_thing",
			doc:  `{"resource_schemas": {"x_thing": {"block": {"block_types": {"b": {"nesting_mode": "tuple", "block": {}}}}}}}`,
			want: []string{"resource_schemas.x_thing", `block b: unknown nesting_mode "tuple"`}},
		{name: "neither type nor nested_type", typeName: "x_thing",
			doc:  `{"resource_schemas": {"x_thing": {"block": {"attributes": {"a": {"optional": true}}}}}}`,
			want: []string{"resource_schemas.x_thing: attribute a: has neither type nor nested_type"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchema([]byte(tc.doc), "test.json")
			if err == nil && tc.typeName != "" {
				_, _, err = s.ResourceSchemas.Get(tc.typeName)
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSplitObject(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want map[string]string
		err  string
	}{
		{doc: `{}`, want: map[string]string{}},
		{doc: ` {"a": 1, "b" : "x\"}", "c": {"d": [1, {"e": "]}"}]}, "f": null, "g": true} `,
			want: map[string]string{"a": "1", "b": `"x\"}"`, "c": `{"d": [1, {"e": "]}"}]}`, "f": "null", "g": "true"}},
		{doc: `{"a\u0062": 1}`, want: map[string]string{"ab": "1"}},
		{doc: `[1]`, err: "want a JSON object"},
		{doc: `{"a": [1}`, err: "unbalanced"},
		{doc: `{"a": "x`, err: "unterminated string"},
		{doc: `{"a" 1}`, err: "want ':'"},
		{doc: `{"a": 1} x`, err: "unexpected data"},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			got, err := splitObject([]byte(tc.doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d members, want %d", len(got), len(tc.want))
			}
			for k, v := range tc.want {
				if string(got[k]) != v {
					t.Errorf("%s = %s, want %s", k, got[k], v)
				}
			}
		})
	}
}
