package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

func testProvider(t *testing.T, fixtures string) *Provider {
	t.Helper()
	p := &Provider{Name: "test", Schema: testSchema(t)}
	if fixtures != "" {
		p.FixturesPath = filepath.Join(t.TempDir(), "fixtures.json")
		if err := os.WriteFile(p.FixturesPath, []byte(fixtures), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestServerSchemaAndMetadata(t *testing.T) {
	p := testProvider(t, "")
	ctx := context.Background()
	resp, err := p.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, resp.Diagnostics)
	if !resp.ServerCapabilities.PlanDestroy {
		t.Error("PlanDestroy capability not set")
	}
	if resp.ProviderMeta == nil || len(resp.ProviderMeta.Block.Attributes) != 1 || resp.ProviderMeta.Block.Attributes[0].Name != "user_agent" {
		t.Errorf("provider_meta not served: %+v", resp.ProviderMeta)
	}
	if len(resp.ResourceSchemas) != 1 || len(resp.DataSourceSchemas) != 1 || len(resp.EphemeralResourceSchemas) != 1 {
		t.Errorf("schemas: %d resources, %d data sources, %d ephemeral", len(resp.ResourceSchemas), len(resp.DataSourceSchemas), len(resp.EphemeralResourceSchemas))
	}
	thing := resp.ResourceSchemas["test_thing"]
	if thing.Version != 1 {
		t.Errorf("test_thing version %d, want 1", thing.Version)
	}
	// the protocol schema's value type is the one the stand-in decodes values with
	if !thing.ValueType().Equal(thing.Block.ValueType()) || !thing.ValueType().Equal(mustGet(t, p.Schema.ResourceSchemas, "test_thing").Block.ValueType()) {
		t.Error("protocol schema type differs from the parsed schema type")
	}
	for _, a := range thing.Block.Attributes {
		if a.Name == "secret_wo" && (!a.WriteOnly || !a.Sensitive) {
			t.Errorf("secret_wo: write_only=%v sensitive=%v", a.WriteOnly, a.Sensitive)
		}
	}
	modes := map[string]tfprotov6.SchemaNestedBlockNestingMode{}
	for _, nb := range thing.Block.BlockTypes {
		modes[nb.TypeName] = nb.Nesting
	}
	want := map[string]tfprotov6.SchemaNestedBlockNestingMode{
		"single_b": tfprotov6.SchemaNestedBlockNestingModeSingle, "list_b": tfprotov6.SchemaNestedBlockNestingModeList,
		"set_b": tfprotov6.SchemaNestedBlockNestingModeSet, "map_b": tfprotov6.SchemaNestedBlockNestingModeMap,
		"group_b": tfprotov6.SchemaNestedBlockNestingModeGroup,
	}
	for k, v := range want {
		if modes[k] != v {
			t.Errorf("block %s nesting %v, want %v", k, modes[k], v)
		}
	}

	meta, _ := p.GetMetadata(ctx, &tfprotov6.GetMetadataRequest{})
	noDiags(t, meta.Diagnostics)
	if len(meta.Resources) != 1 || meta.Resources[0].TypeName != "test_thing" || meta.DataSources[0].TypeName != "test_zones" || meta.EphemeralResources[0].TypeName != "test_auth" {
		t.Errorf("metadata: %+v", meta)
	}
	ids, _ := p.GetResourceIdentitySchemas(ctx, &tfprotov6.GetResourceIdentitySchemasRequest{})
	if len(ids.IdentitySchemas) != 0 || len(ids.Diagnostics) != 0 {
		t.Errorf("identity schemas: %+v", ids)
	}
	fns, _ := p.GetFunctions(ctx, &tfprotov6.GetFunctionsRequest{})
	if len(fns.Functions) != 0 {
		t.Error("functions served")
	}
}

// TestServerLifecycle runs create, a second plan, destroy through the RPCs.
func TestServerLifecycle(t *testing.T) {
	p := testProvider(t, `{"resources": {"test_thing": {"identity": [{"oidc": [{"issuer": "https://oidc.test/abc"}]}]}}}`)
	ctx := context.Background()
	typ := mustGet(t, p.Schema.ResourceSchemas, "test_thing").Block.ValueType()
	config := jsonValue(t, typ, thingConfig)
	null := nullOf(typ)

	// create
	plan, _ := p.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{
		TypeName: "test_thing", PriorState: mustDyn(t, typ, null), ProposedNewState: mustDyn(t, typ, config), Config: mustDyn(t, typ, config),
	})
	noDiags(t, plan.Diagnostics)
	if len(plan.RequiresReplace) != 0 {
		t.Error("RequiresReplace set")
	}
	planned := mustUndyn(t, typ, plan.PlannedState)
	if describe(valueAt(t, planned, "arn")) != "unknown" || describe(valueAt(t, planned, "secret_wo")) != "null" {
		t.Errorf("planned state: %s", describe(planned))
	}
	apply, _ := p.ApplyResourceChange(ctx, &tfprotov6.ApplyResourceChangeRequest{
		TypeName: "test_thing", PriorState: mustDyn(t, typ, null), PlannedState: plan.PlannedState, Config: mustDyn(t, typ, config), PlannedPrivate: []byte("p"),
	})
	noDiags(t, apply.Diagnostics)
	state := mustUndyn(t, typ, apply.NewState)
	if !state.IsFullyKnown() || describe(valueAt(t, state, "identity[0].oidc[0].issuer")) != `"https://oidc.test/abc"` || string(apply.Private) != "p" {
		t.Errorf("applied state: %s (private %q)", describe(state), apply.Private)
	}

	// refresh: unchanged
	read, _ := p.ReadResource(ctx, &tfprotov6.ReadResourceRequest{TypeName: "test_thing", CurrentState: apply.NewState, Private: []byte("p")})
	noDiags(t, read.Diagnostics)
	if !mustUndyn(t, typ, read.NewState).Equal(state) || string(read.Private) != "p" {
		t.Error("ReadResource changed the state")
	}

	// second plan: Terraform proposes the prior state (config has no computed values) and it stands
	plan2, _ := p.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{
		TypeName: "test_thing", PriorState: apply.NewState, ProposedNewState: apply.NewState, Config: mustDyn(t, typ, config),
	})
	noDiags(t, plan2.Diagnostics)
	if !mustUndyn(t, typ, plan2.PlannedState).Equal(state) {
		t.Error("second plan differs from the applied state")
	}

	// destroy
	plan3, _ := p.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{
		TypeName: "test_thing", PriorState: apply.NewState, ProposedNewState: mustDyn(t, typ, null), Config: mustDyn(t, typ, null),
	})
	noDiags(t, plan3.Diagnostics)
	if !mustUndyn(t, typ, plan3.PlannedState).IsNull() {
		t.Error("destroy plan is not null")
	}
	apply3, _ := p.ApplyResourceChange(ctx, &tfprotov6.ApplyResourceChangeRequest{
		TypeName: "test_thing", PriorState: apply.NewState, PlannedState: plan3.PlannedState, Config: mustDyn(t, typ, null),
	})
	noDiags(t, apply3.Diagnostics)
	if !mustUndyn(t, typ, apply3.NewState).IsNull() {
		t.Error("destroy result is not null")
	}
}

func TestServerDataAndEphemeral(t *testing.T) {
	p := testProvider(t, `{"data_sources": {"test_zones": {"names": ["a", "b", "c"]}, "other_type": {"x": 1}},
		"ephemeral_resources": {"test_auth": {"token": "tok"}}}`)
	ctx := context.Background()
	dtyp := mustGet(t, p.Schema.DataSourceSchemas, "test_zones").Block.ValueType()
	read, _ := p.ReadDataSource(ctx, &tfprotov6.ReadDataSourceRequest{TypeName: "test_zones", Config: mustDyn(t, dtyp, jsonValue(t, dtyp, `{"state": "available"}`))})
	noDiags(t, read.Diagnostics)
	st := mustUndyn(t, dtyp, read.State)
	if describe(valueAt(t, st, "names")) != `["a","b","c"]` || describe(valueAt(t, st, "state")) != `"available"` || !st.IsFullyKnown() {
		t.Errorf("data source state: %s", describe(st))
	}

	etyp := mustGet(t, p.Schema.EphemeralResourceSchemas, "test_auth").Block.ValueType()
	open, _ := p.OpenEphemeralResource(ctx, &tfprotov6.OpenEphemeralResourceRequest{TypeName: "test_auth", Config: mustDyn(t, etyp, jsonValue(t, etyp, `{"name": "c"}`))})
	noDiags(t, open.Diagnostics)
	if got := describe(valueAt(t, mustUndyn(t, etyp, open.Result), "token")); got != `"tok"` {
		t.Errorf("token = %s", got)
	}
	renew, _ := p.RenewEphemeralResource(ctx, &tfprotov6.RenewEphemeralResourceRequest{TypeName: "test_auth"})
	closeResp, _ := p.CloseEphemeralResource(ctx, &tfprotov6.CloseEphemeralResourceRequest{TypeName: "test_auth"})
	noDiags(t, append(renew.Diagnostics, closeResp.Diagnostics...))
}

func TestServerUpgradeResourceState(t *testing.T) {
	p := testProvider(t, "")
	ctx := context.Background()
	typ := mustGet(t, p.Schema.ResourceSchemas, "test_thing").Block.ValueType()
	resp, _ := p.UpgradeResourceState(ctx, &tfprotov6.UpgradeResourceStateRequest{
		TypeName: "test_thing", Version: 0,
		RawState: &tfprotov6.RawState{JSON: []byte(`{"name": "a", "id": "x", "removed_attr": "gone", "list_b": [{"x": "1", "cx": "2", "inner": []}]}`)},
	})
	noDiags(t, resp.Diagnostics)
	v := mustUndyn(t, typ, resp.UpgradedState)
	for path, want := range map[string]string{"name": `"a"`, "id": `"x"`, "list_b[0].cx": `"2"`, "arn": "null"} {
		if got := describe(valueAt(t, v, path)); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}

	flat, _ := p.UpgradeResourceState(ctx, &tfprotov6.UpgradeResourceStateRequest{
		TypeName: "test_thing", RawState: &tfprotov6.RawState{Flatmap: map[string]string{"id": "x"}},
	})
	if !strings.Contains(diagText(flat.Diagnostics), "flatmap state is not supported by the stand-in") {
		t.Errorf("flatmap: %s", diagText(flat.Diagnostics))
	}
	bad, _ := p.UpgradeResourceState(ctx, &tfprotov6.UpgradeResourceStateRequest{
		TypeName: "test_thing", RawState: &tfprotov6.RawState{JSON: []byte(`{"name": 5, "size": "x"}`)},
	})
	if !strings.Contains(diagText(bad.Diagnostics), "test_thing") {
		t.Errorf("bad state: %q", diagText(bad.Diagnostics))
	}
}

func TestServerNotSupported(t *testing.T) {
	p := testProvider(t, "")
	ctx := context.Background()
	imp, _ := p.ImportResourceState(ctx, &tfprotov6.ImportResourceStateRequest{TypeName: "test_thing", ID: "x"})
	mv, _ := p.MoveResourceState(ctx, &tfprotov6.MoveResourceStateRequest{TargetTypeName: "test_thing"})
	up, _ := p.UpgradeResourceIdentity(ctx, &tfprotov6.UpgradeResourceIdentityRequest{TypeName: "test_thing"})
	gen, _ := p.GenerateResourceConfig(ctx, &tfprotov6.GenerateResourceConfigRequest{TypeName: "test_thing"})
	fn, _ := p.CallFunction(ctx, &tfprotov6.CallFunctionRequest{Name: "f"})
	for _, tc := range []struct {
		what string
		text string
	}{
		{"Importing test_thing", diagText(imp.Diagnostics)},
		{"Moving resource state to test_thing", diagText(mv.Diagnostics)},
		{"Upgrading the resource identity of test_thing", diagText(up.Diagnostics)},
		{"Generating configuration for test_thing", diagText(gen.Diagnostics)},
		{"Calling provider function f", fn.Error.Text},
	} {
		if !strings.Contains(tc.text, tc.what+" is not supported by the provider stand-in (test)") {
			t.Errorf("%s: %q", tc.what, tc.text)
		}
	}
}

func TestServerErrorsSayWhatAndWhere(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(p *Provider) []*tfprotov6.Diagnostic
		p    func(t *testing.T) *Provider
		want []string
	}{
		{
			name: "no schema",
			p: func(t *testing.T) *Provider {
				_, err := ReadSchemaFile("/nonexistent/schema.json.gz")
				return &Provider{Name: "aws", SchemaErr: err}
			},
			run: func(p *Provider) []*tfprotov6.Diagnostic {
				r, _ := p.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
				return r.Diagnostics
			},
			want: []string{"stand-in (aws)", "/nonexistent/schema.json.gz"},
		},
		{
			name: "unknown resource type",
			p:    func(t *testing.T) *Provider { return testProvider(t, "") },
			run: func(p *Provider) []*tfprotov6.Diagnostic {
				r, _ := p.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{TypeName: "test_nope"})
				return r.Diagnostics
			},
			want: []string{"test_nope", "resource"},
		},
		{
			name: "bad fixture attribute",
			p: func(t *testing.T) *Provider {
				return testProvider(t, `{"data_sources": {"test_zones": {"nonesuch": 1}}}`)
			},
			run: func(p *Provider) []*tfprotov6.Diagnostic {
				typ := mustGet(t, p.Schema.DataSourceSchemas, "test_zones").Block.ValueType()
				r, _ := p.ReadDataSource(ctx, &tfprotov6.ReadDataSourceRequest{TypeName: "test_zones", Config: mustDyn(t, typ, jsonValue(t, typ, `{}`))})
				return r.Diagnostics
			},
			want: []string{"fixtures.json", "data_sources.test_zones.nonesuch", "has no attribute"},
		},
		{
			name: "bad fixture value",
			p: func(t *testing.T) *Provider {
				return testProvider(t, `{"resources": {"test_thing": {"identity": [{"oidc": "x"}]}}}`)
			},
			run: func(p *Provider) []*tfprotov6.Diagnostic {
				typ := mustGet(t, p.Schema.ResourceSchemas, "test_thing").Block.ValueType()
				b := mustGet(t, p.Schema.ResourceSchemas, "test_thing").Block
				planned, _ := PlanCreate(b, jsonValue(t, typ, `{"name": "a"}`))
				r, _ := p.ApplyResourceChange(ctx, &tfprotov6.ApplyResourceChangeRequest{TypeName: "test_thing",
					PlannedState: mustDyn(t, typ, planned), Config: mustDyn(t, typ, jsonValue(t, typ, `{"name": "a"}`))})
				return r.Diagnostics
			},
			want: []string{"resources.test_thing.identity", "[0].oidc", "want an array"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := diagText(tc.run(tc.p(t)))
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("diagnostics %q do not mention %q", text, w)
				}
			}
		})
	}
}

func TestCanonicalIsOrderIndependent(t *testing.T) {
	typ := tftypes.Map{ElementType: tftypes.String}
	a := jsonValue(t, typ, `{"a": "1", "b": "2"}`)
	b := jsonValue(t, typ, `{"b": "2", "a": "1"}`)
	if Canonical(a) != Canonical(b) {
		t.Errorf("%s != %s", Canonical(a), Canonical(b))
	}
}

// One stand-in serves every command of a test session (reattach), so a fixtures file rewritten
// between two commands must be read again, and an unchanged one must not be re-parsed to stay valid.
func TestFixturesReloadWhenTheFileChanges(t *testing.T) {
	p := testProvider(t, `{}`)
	b := mustGet(t, p.Schema.DataSourceSchemas, "test_zones").Block
	for _, step := range []struct {
		name    string
		content string // "" removes the file
		wantErr string // "" for none
	}{
		{name: "first read", content: `{}`},
		{name: "rewritten with an unknown section", content: `{"nope": {}}`, wantErr: `unknown key "nope"`},
		{name: "rewritten valid again", content: `{"data_sources": {}}`},
		{name: "removed", wantErr: "reading the fixtures file"},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.content == "" {
				if err := os.Remove(p.FixturesPath); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p.FixturesPath, []byte(step.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := p.fixturesFor(SectionDataSources, "test_zones", b)
			switch {
			case step.wantErr == "" && err != nil:
				t.Errorf("fixtures %s: unexpected error %v", p.FixturesPath, err)
			case step.wantErr != "" && (err == nil || !strings.Contains(err.Error(), step.wantErr)):
				t.Errorf("fixtures %s: error %v, want one containing %q", p.FixturesPath, err, step.wantErr)
			}
		})
	}
}
