package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValueFromJSON(t *testing.T) {
	for _, tc := range []struct {
		typ, js, want, err string
	}{
		{typ: `"string"`, js: `"x"`, want: `"x"`},
		{typ: `"string"`, js: `5`, want: `"5"`},
		{typ: `"string"`, js: `null`, want: "null"},
		{typ: `"number"`, js: `3.5`, want: "3.5"},
		{typ: `"number"`, js: `"42"`, want: "42"},
		{typ: `"bool"`, js: `true`, want: "true"},
		{typ: `"bool"`, js: `"false"`, want: "false"},
		{typ: `["list","string"]`, js: `["a","b"]`, want: `["a","b"]`},
		{typ: `["set","number"]`, js: `[1,2]`, want: `[1,2]`},
		{typ: `["map",["list","string"]]`, js: `{"k":["v"]}`, want: `{"k":["v"]}`},
		{typ: `["object",{"a":"string","b":"number"}]`, js: `{"a":"x"}`, want: `{"a":"x","b":~}`},
		{typ: `["tuple",["string","bool"]]`, js: `["x",true]`, want: `["x",true]`},
		{typ: `"dynamic"`, js: `{"a":[1,"x"]}`, want: `{"a":[1,"x"]}`},
		{typ: `["list",["object",{"oidc":["list",["object",{"issuer":"string"}]]}]]`, js: `[{"oidc":[{"issuer":"https://i"}]}]`, want: `[{"oidc":[{"issuer":"https://i"}]}]`},
		{typ: `"number"`, js: `"abc"`, err: `want a number, got "abc"`},
		{typ: `"bool"`, js: `1`, err: "want a bool, got a number"},
		{typ: `["list","string"]`, js: `{"a":1}`, err: "want an array"},
		{typ: `["object",{"a":"string"}]`, js: `{"b":"x"}`, err: `unknown attribute "b"`},
		{typ: `["list",["object",{"a":"number"}]]`, js: `[{"a":"x"}]`, err: "at [0].a: want a number"},
	} {
		t.Run(tc.typ+" "+tc.js, func(t *testing.T) {
			typ, err := ParseCtyType([]byte(tc.typ))
			if err != nil {
				t.Fatal(err)
			}
			v, err := ValueFromJSON(typ, []byte(tc.js))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(v); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFixtures(t *testing.T) {
	s := testSchema(t)
	thingBlock := mustGet(t, s.ResourceSchemas, "test_thing").Block
	write := func(t *testing.T, content string) string {
		p := filepath.Join(t.TempDir(), "fx.json")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, content, loadErr, forErr string
		want                           map[string]string
	}{
		{name: "valid", content: `{"resources": {"test_thing": {"arn": "arn:aws:x", "names": ["a"]}, "other_provider_type": {"z": 1}}}`,
			want: map[string]string{"arn": `"arn:aws:x"`, "names": `["a"]`}},
		{name: "empty", content: `{}`, want: map[string]string{}},
		{name: "unknown section", content: `{"resource": {}}`, loadErr: `unknown key "resource"`},
		{name: "not an object", content: `[1]`, loadErr: "not a JSON object"},
		{name: "bad section", content: `{"resources": {"test_thing": 5}}`, loadErr: "resources must map type names"},
		{name: "unknown attribute", content: `{"resources": {"test_thing": {"nope": 1}}}`, forErr: `resources.test_thing.nope: test_thing has no attribute "nope"`},
		{name: "block", content: `{"resources": {"test_thing": {"list_b": []}}}`, forErr: "is a nested block"},
		{name: "not computed", content: `{"resources": {"test_thing": {"name": "x"}}}`, forErr: "not a computed attribute"},
		{name: "wrong type", content: `{"resources": {"test_thing": {"size": "big"}}}`, forErr: `resources.test_thing.size: want a number, got "big"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, tc.content)
			fx, err := LoadFixtures(path)
			if tc.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.loadErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("load error %v, want %q and the path", err, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := fx.For(SectionResources, "test_thing", thingBlock)
			if tc.forErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.forErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want %q and the path", err, tc.forErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %d fixtures, want %d", len(got), len(tc.want))
			}
			for k, w := range tc.want {
				if d := describe(got[k]); d != w {
					t.Errorf("%s = %s, want %s", k, d, w)
				}
			}
		})
	}
	if _, err := LoadFixtures("/nonexistent/fx.json"); err == nil || !strings.Contains(err.Error(), "/nonexistent/fx.json") {
		t.Errorf("missing file: %v", err)
	}
	if fx, err := LoadFixtures(""); err != nil || fx == nil {
		t.Errorf("no fixtures file: %v", err)
	} else if m, _ := fx.For(SectionResources, "test_thing", thingBlock); len(m) != 0 {
		t.Error("fixtures without a file")
	}
}
