package main

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// thingConfig is a configuration of test_thing touching every nesting mode.
const thingConfig = `{
	"name": "a", "tags": {"k": "v"}, "secret_wo": "hunter2", "secret_wo_version": 1,
	"ports": [{"port": 80}, {"port": 443, "node_port": 30443, "token_wo": "t"}],
	"rules": [{"cidr": "10.0.0.0/8"}],
	"labels": {"app": {"value": "x"}},
	"single_b": {"x": "s"},
	"list_b": [{"x": "l0", "inner": [{"y": "i"}]}],
	"set_b": [{"x": "s0"}],
	"map_b": {"k": {"x": "m"}},
	"group_b": {"x": "g"}
}`

func thing(t *testing.T) *Block {
	return mustGet(t, testSchema(t).ResourceSchemas, "test_thing").Block
}

func TestPlanCreate(t *testing.T) {
	b := thing(t)
	planned, err := PlanCreate(b, jsonValue(t, b.ValueType(), thingConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		// top level: computed null -> unknown, configured kept, write-only null
		{"id", "unknown"},
		{"name", `"a"`},
		{"arn", "unknown"},
		{"size", "unknown"},
		{"enabled", "unknown"},
		{"tags", `{"k":"v"}`},
		{"tags_all", "unknown"},
		{"names", "unknown"},
		{"zones", "unknown"},
		{"identity", "unknown"},
		{"anything", "unknown"},
		{"secret_wo", "null"},
		{"secret_wo_version", "1"},
		// computed nested attribute: wholly unknown
		{"meta", "unknown"},
		// nested attributes: list, set, map
		{"ports[0].port", "80"},
		{"ports[0].node_port", "unknown"},
		{"ports[1].node_port", "30443"},
		{"ports[1].token_wo", "null"},
		{"rules[0].cidr", `"10.0.0.0/8"`},
		{"rules[0].rule_id", "unknown"},
		{`labels["app"].value`, `"x"`},
		{`labels["app"].hash`, "unknown"},
		// nested blocks: single, list (with a nested list), set, map, group
		{"single_b.x", `"s"`},
		{"single_b.cx", "unknown"},
		{"list_b[0].x", `"l0"`},
		{"list_b[0].cx", "unknown"},
		{"list_b[0].inner[0].y", `"i"`},
		{"list_b[0].inner[0].ci", "unknown"},
		{"set_b[0].x", `"s0"`},
		{"set_b[0].cx", "unknown"},
		{`map_b["k"].x`, `"m"`},
		{`map_b["k"].cx`, "unknown"},
		{"group_b.x", `"g"`},
		{"group_b.cx", "unknown"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if got := describe(valueAt(t, planned, tc.path)); got != tc.want {
				t.Errorf("%s = %s, want %s", tc.path, got, tc.want)
			}
		})
	}
}

func TestPlanCreateKeepsNullBlocksAndConfiguredComputed(t *testing.T) {
	b := thing(t)
	planned, err := PlanCreate(b, jsonValue(t, b.ValueType(), `{"name": "b", "id": "given", "enabled": true, "meta": {"revision": 7}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"id", `"given"`},
		{"enabled", "true"},
		{"single_b", "null"},
		{"list_b", "null"},
		{"ports", "null"},
		// a configured computed nested attribute keeps its values; its null computed parts become unknown
		{"meta.revision", "7"},
		{"meta.chart", "unknown"},
	} {
		if got := describe(valueAt(t, planned, tc.path)); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.path, got, tc.want)
		}
	}
}

func TestPlanUpdate(t *testing.T) {
	b := thing(t)
	for _, tc := range []struct {
		name, proposed string
		want           map[string]string
	}{
		{
			name:     "proposed state stands",
			proposed: `{"name": "a", "id": "thing-1", "arn": "arn:x", "size": 3, "tags": {"k": "v2"}, "list_b": [{"x": "l0", "cx": "c"}]}`,
			want:     map[string]string{"id": `"thing-1"`, "size": "3", "tags": `{"k":"v2"}`, "list_b[0].cx": `"c"`, "zones": "null", "meta": "null"},
		},
		{
			name:     "write-only nulled",
			proposed: `{"name": "a", "secret_wo": "s3cret", "secret_wo_version": 2, "ports": [{"port": 1, "token_wo": "t"}]}`,
			want:     map[string]string{"secret_wo": "null", "secret_wo_version": "2", "ports[0].token_wo": "null", "ports[0].node_port": "null"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proposed := jsonValue(t, b.ValueType(), tc.proposed)
			planned, err := PlanUpdate(b, proposed)
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range tc.want {
				if got := describe(valueAt(t, planned, path)); got != want {
					t.Errorf("%s = %s, want %s", path, got, want)
				}
			}
			if !strings.Contains(tc.proposed, "_wo\"") && !planned.Equal(proposed) {
				t.Errorf("planned state differs from the proposed state:\n%s\n%s", describe(planned), describe(proposed))
			}
		})
	}
}

func applyThing(t *testing.T, config string, fixtures map[string]tftypes.Value) tftypes.Value {
	t.Helper()
	b := thing(t)
	cfg := jsonValue(t, b.ValueType(), config)
	planned, err := PlanCreate(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := Seed(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &Filler{TypeName: "test_thing", Fixtures: fixtures, Seed: seed}
	state, err := f.Fill(b, planned)
	if err != nil {
		t.Fatal(err)
	}
	if !state.IsFullyKnown() {
		t.Fatalf("applied state has unknown values: %s", describe(state))
	}
	return state
}

func TestApplyPlaceholders(t *testing.T) {
	state := applyThing(t, thingConfig, nil)
	hex8 := `[0-9a-f]{8}`
	for _, tc := range []struct{ path, want string }{
		{"id", `^"thing-` + hex8 + `"$`},
		{"name", `^"a"$`},
		{"arn", `^"arn:aws:thing:us-east-1:123456789012:thing/` + hex8 + `"$`},
		{"size", `^1$`},
		{"enabled", `^false$`},
		{"tags_all", `^\{\}$`},
		{"names", `^\["standin-test-thing-names-` + hex8 + `"\]$`},
		{"zones", `^\["standin-test-thing-zones-` + hex8 + `"\]$`},
		{"identity[0].oidc[0].issuer", `^"https://thing-` + hex8 + `\.standin\.invalid"$`},
		{"anything", `^"standin-test-thing-anything-` + hex8 + `"$`},
		{"secret_wo", `^null$`},
		{"meta.revision", `^1$`},
		{"meta.chart", `^"standin-test-thing-chart-` + hex8 + `"$`},
		{"ports[0].node_port", `^1$`},
		{"ports[1].node_port", `^30443$`},
		{"ports[1].token_wo", `^null$`},
		{"rules[0].rule_id", `^"standin-test-thing-rule-id-` + hex8 + `"$`},
		{`labels["app"].hash`, `^"standin-test-thing-hash-` + hex8 + `"$`},
		{"single_b.cx", `^"standin-test-thing-cx-` + hex8 + `"$`},
		{"list_b[0].inner[0].ci", `^1$`},
		{"set_b[0].cx", `^"standin-`},
		{`map_b["k"].cx`, `^"standin-`},
		{"group_b.cx", `^"standin-`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got := describe(valueAt(t, state, tc.path))
			if !regexp.MustCompile(tc.want).MatchString(got) {
				t.Errorf("%s = %s, want match of %s", tc.path, got, tc.want)
			}
		})
	}
}

func TestApplyDeterminism(t *testing.T) {
	a1 := applyThing(t, thingConfig, nil)
	a2 := applyThing(t, thingConfig, nil)
	if !a1.Equal(a2) {
		t.Fatal("same configuration, different applied states")
	}
	other := applyThing(t, strings.Replace(thingConfig, `"name": "a"`, `"name": "other"`, 1), nil)
	for _, path := range []string{"id", "arn", "names[0]"} {
		if describe(valueAt(t, a1, path)) == describe(valueAt(t, other, path)) {
			t.Errorf("%s is the same for two different configurations", path)
		}
	}
	// write-only values (passwords) do not change placeholders
	if !a1.Equal(applyThing(t, strings.Replace(thingConfig, "hunter2", "other-password", 1), nil)) {
		t.Error("a write-only value changed the applied state")
	}
	// different attributes of one resource differ
	if describe(valueAt(t, a1, "single_b.cx")) == describe(valueAt(t, a1, "group_b.cx")) {
		t.Error("two attribute paths got the same placeholder")
	}
}

func TestApplyFixtures(t *testing.T) {
	b := thing(t)
	fx := map[string]tftypes.Value{
		"identity": jsonValue(t, b.Attributes["identity"].ValueType(), `[{"oidc": [{"issuer": "https://oidc.example/id/ABC"}]}]`),
		"names":    jsonValue(t, b.Attributes["names"].ValueType(), `["x", "y", "z"]`),
	}
	state := applyThing(t, thingConfig, fx)
	for _, tc := range []struct{ path, want string }{
		{"identity[0].oidc[0].issuer", `"https://oidc.example/id/ABC"`},
		{"names", `["x","y","z"]`},
	} {
		if got := describe(valueAt(t, state, tc.path)); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.path, got, tc.want)
		}
	}
	// a fixture never replaces a known value
	fx2 := map[string]tftypes.Value{"id": jsonValue(t, tftypes.String, `"from-fixture"`)}
	state = applyThing(t, `{"name": "a", "id": "configured"}`, fx2)
	if got := describe(valueAt(t, state, "id")); got != `"configured"` {
		t.Errorf("id = %s, want the configured value", got)
	}
}

func TestDataSourceFill(t *testing.T) {
	s := testSchema(t)
	b := mustGet(t, s.DataSourceSchemas, "test_zones").Block
	const config = `{"state": "available", "filter": [{"name": "n", "values": ["v"]}]}`
	for _, tc := range []struct {
		name     string
		config   string
		fixtures string
		want     map[string]string
	}{
		{
			name: "placeholders", config: config,
			want: map[string]string{
				"state": `"available"`, "filter[0].name": `"n"`, "names": `^\["standin-test-zones-names-[0-9a-f]{8}"\]$`,
				"id": `^"zones-[0-9a-f]{8}"$`, "region": `"us-east-1"`,
			},
		},
		{
			name: "fixtures", config: config, fixtures: `{"names": ["eu-west-1a", "eu-west-1b", "eu-west-1c"], "zone_ids": []}`,
			want: map[string]string{"names": `["eu-west-1a","eu-west-1b","eu-west-1c"]`, "zone_ids": "[]", "state": `"available"`},
		},
		{
			name: "configured computed value kept over fixture", config: `{"region": "eu-west-1"}`, fixtures: `{"region": "us-west-2"}`,
			want: map[string]string{"region": `"eu-west-1"`, "state": "null"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fixtures map[string]tftypes.Value
			if tc.fixtures != "" {
				fx := &Fixtures{Path: "inline", sections: map[string]map[string]map[string]json.RawMessage{}}
				var attrs map[string]json.RawMessage
				if err := json.Unmarshal([]byte(tc.fixtures), &attrs); err != nil {
					t.Fatal(err)
				}
				fx.sections[SectionDataSources] = map[string]map[string]json.RawMessage{"test_zones": attrs}
				var err error
				if fixtures, err = fx.For(SectionDataSources, "test_zones", b); err != nil {
					t.Fatal(err)
				}
			}
			cfg := jsonValue(t, b.ValueType(), tc.config)
			f := &Filler{TypeName: "test_zones", FillComputedNulls: true, Fixtures: fixtures, Seed: Canonical(cfg)}
			state, err := f.Fill(b, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !state.IsFullyKnown() {
				t.Fatalf("data source result has unknown values: %s", describe(state))
			}
			for path, want := range tc.want {
				got := describe(valueAt(t, state, path))
				if strings.HasPrefix(want, "^") {
					if !regexp.MustCompile(want).MatchString(got) {
						t.Errorf("%s = %s, want match of %s", path, got, want)
					}
				} else if got != want {
					t.Errorf("%s = %s, want %s", path, got, want)
				}
			}
			var js string
			if err := valueAt(t, state, "json").As(&js); err != nil || !json.Valid([]byte(js)) {
				t.Errorf("json = %q is not JSON", js)
			}
		})
	}
}

func TestPlaceholderString(t *testing.T) {
	const seed = "{}"
	hex8 := `[0-9a-f]{8}`
	for _, tc := range []struct{ typeName, path, name, want string }{
		{"aws_eks_cluster", "id", "id", `^eks-cluster-` + hex8 + `$`},
		{"aws_eks_cluster", "arn", "arn", `^arn:aws:eks:us-east-1:123456789012:cluster/` + hex8 + `$`},
		{"aws_iam_role", "arn", "arn", `^arn:aws:iam:us-east-1:123456789012:role/` + hex8 + `$`},
		{"aws_vpc", "arn", "arn", `^arn:aws:vpc:us-east-1:123456789012:vpc/` + hex8 + `$`},
		{"aws_lb", "target_group_arns[0]", "target_group_arns", `^arn:aws:lb:`},
		{"aws_caller_identity", "account_id", "account_id", `^123456789012$`},
		{"aws_vpc", "owner_id", "owner_id", `^123456789012$`},
		{"aws_region", "region", "region", `^us-east-1$`},
		{"aws_eks_cluster", "endpoint", "endpoint", `^https://eks-cluster-` + hex8 + `\.standin\.invalid$`},
		{"aws_eks_cluster", "identity[0].oidc[0].issuer", "issuer", `^https://`},
		{"aws_iam_policy_document", "json", "json", `^\{"standin":"aws-iam-policy-document-json-` + hex8 + `"\}$`},
		{"aws_iam_policy_document", "minified_json", "minified_json", `^\{"standin":`},
		{"aws_vpc", "ipv6_cidr_block", "ipv6_cidr_block", `^fd00::/56$`},
		{"aws_vpc", "cidr_block", "cidr_block", `^10\.0\.0\.0/16$`},
		{"aws_eks_cluster", "status", "status", `^standin-aws-eks-cluster-status-` + hex8 + `$`},
		{"null_resource", "id", "id", `^resource-` + hex8 + `$`},
	} {
		t.Run(tc.typeName+"."+tc.path, func(t *testing.T) {
			got := placeholderString(tc.typeName, loc{path: tc.path, name: tc.name}, seed)
			if !regexp.MustCompile(tc.want).MatchString(got) {
				t.Errorf("got %q, want match of %s", got, tc.want)
			}
		})
	}
	// certificate data is base64 (modules base64decode it)
	got := placeholderString("aws_eks_cluster", loc{path: "certificate_authority[0].data", name: "data"}, seed)
	dec, err := base64.StdEncoding.DecodeString(got)
	if err != nil || !strings.Contains(string(dec), "BEGIN CERTIFICATE") {
		t.Errorf("certificate_authority[0].data = %q: not base64 of a certificate (%v)", got, err)
	}
}

func TestPlaceholderTypes(t *testing.T) {
	f := &Filler{TypeName: "test_thing"}
	for _, tc := range []struct {
		name string
		typ  string
		want string
	}{
		{"s", `"string"`, `^"standin-test-thing-s-[0-9a-f]{8}"$`},
		{"n", `"number"`, `^1$`},
		{"b", `"bool"`, `^false$`},
		{"d", `"dynamic"`, `^"standin-test-thing-d-`},
		{"l", `["list","number"]`, `^\[1\]$`},
		{"st", `["set","bool"]`, `^\[false\]$`},
		{"m", `["map","string"]`, `^\{\}$`},
		{"o", `["object",{"a":"number","b":["list","bool"]}]`, `^\{"a":1,"b":\[false\]\}$`},
		{"tu", `["tuple",["number","bool"]]`, `^\[1,false\]$`},
		{"ll", `["list",["list","string"]]`, `^\[\["standin-test-thing-ll-[0-9a-f]{8}"\]\]$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ, err := ParseCtyType([]byte(tc.typ))
			if err != nil {
				t.Fatal(err)
			}
			v, err := f.placeholder(typ, loc{}.attr(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(v); !regexp.MustCompile(tc.want).MatchString(got) {
				t.Errorf("placeholder of %s = %s, want match of %s", tc.typ, got, tc.want)
			}
		})
	}
}
