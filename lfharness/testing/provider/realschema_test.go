package main

// Tests against the real provider schemas committed in schemas/ (see schemas/README.md).

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

const realSchemas = "schemas"

var realSchemaFiles = map[string]string{
	"aws":        "aws-6.47.0.json.gz",
	"helm":       "helm-3.0.2.json.gz",
	"kubernetes": "kubernetes-2.38.0.json.gz",
	"null":       "null-3.2.4.json.gz",
}

// realSchema loads one real schema and serves it as a Provider, or skips the test.
func realSchema(t *testing.T, name string) (*Provider, *tfprotov6.GetProviderSchemaResponse) {
	t.Helper()
	path := filepath.Join(realSchemas, realSchemaFiles[name])
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("real provider schema missing (%v): the schemas are committed in schemas/", err)
	}
	start := time.Now()
	s, err := ReadSchemaFile(path)
	if err != nil {
		t.Fatal(err)
	}
	loaded := time.Since(start)
	p := &Provider{Name: name, Schema: s}
	resp, err := p.GetProviderSchema(t.Context(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, resp.Diagnostics)
	t.Logf("%s: loaded in %v (process start), every schema parsed and converted in %v more; %d resources, %d data sources, %d ephemeral",
		name, loaded.Round(time.Millisecond), (time.Since(start) - loaded).Round(time.Millisecond),
		len(resp.ResourceSchemas), len(resp.DataSourceSchemas), len(resp.EphemeralResourceSchemas))
	return p, resp
}

func attrNamed(b *tfprotov6.SchemaBlock, name string) *tfprotov6.SchemaAttribute {
	for _, a := range b.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

func blockNamed(b *tfprotov6.SchemaBlock, name string) *tfprotov6.SchemaNestedBlock {
	for _, nb := range b.BlockTypes {
		if nb.TypeName == name {
			return nb
		}
	}
	return nil
}

func TestRealSchemasLoad(t *testing.T) {
	for name := range realSchemaFiles {
		t.Run(name, func(t *testing.T) {
			_, resp := realSchema(t, name)
			if resp.Provider == nil || resp.Provider.Block == nil {
				t.Error("no provider block")
			}
		})
	}
}

func TestRealSchemaEntries(t *testing.T) {
	_, aws := realSchema(t, "aws")
	_, helm := realSchema(t, "helm")
	_, k8s := realSchema(t, "kubernetes")

	identityType := tftypes.List{ElementType: tftypes.Object{AttributeTypes: map[string]tftypes.Type{
		"oidc": tftypes.List{ElementType: tftypes.Object{AttributeTypes: map[string]tftypes.Type{"issuer": tftypes.String}}},
	}}}
	for _, tc := range []struct {
		name  string
		check func(t *testing.T)
	}{
		{"aws provider_meta user_agent", func(t *testing.T) {
			a := attrNamed(aws.ProviderMeta.Block, "user_agent")
			if a == nil || !a.Type.Equal(tftypes.List{ElementType: tftypes.String}) {
				t.Errorf("user_agent: %+v", a)
			}
		}},
		{"aws provider default_tags", func(t *testing.T) {
			nb := blockNamed(aws.Provider.Block, "default_tags")
			if nb == nil || nb.Nesting != tfprotov6.SchemaNestedBlockNestingModeList || nb.MaxItems != 1 {
				t.Errorf("default_tags: %+v", nb)
			}
		}},
		{"aws_eks_cluster", func(t *testing.T) {
			b := aws.ResourceSchemas["aws_eks_cluster"].Block
			if a := attrNamed(b, "identity"); a == nil || !a.Computed || !a.Type.Equal(identityType) {
				t.Errorf("identity: %+v", a)
			}
			if a := attrNamed(b, "name"); a == nil || !a.Required {
				t.Errorf("name: %+v", a)
			}
			if nb := blockNamed(b, "access_config"); nb == nil || nb.Nesting != tfprotov6.SchemaNestedBlockNestingModeList || nb.MaxItems != 1 {
				t.Errorf("access_config: %+v", nb)
			}
			if nb := blockNamed(b, "timeouts"); nb == nil || nb.Nesting != tfprotov6.SchemaNestedBlockNestingModeSingle {
				t.Errorf("timeouts: %+v", nb)
			}
			enc := blockNamed(b, "encryption_config")
			if p := blockNamed(enc.Block, "provider"); p == nil || p.MinItems != 1 || p.MaxItems != 1 {
				t.Errorf("encryption_config.provider: %+v", p)
			}
		}},
		{"aws_db_instance password_wo", func(t *testing.T) {
			b := aws.ResourceSchemas["aws_db_instance"].Block
			a := attrNamed(b, "password_wo")
			if a == nil || !a.WriteOnly || !a.Sensitive || !a.Optional || !a.Type.Is(tftypes.String) {
				t.Errorf("password_wo: %+v", a)
			}
			if v := attrNamed(b, "password_wo_version"); v == nil || v.WriteOnly || !v.Type.Is(tftypes.Number) {
				t.Errorf("password_wo_version: %+v", v)
			}
		}},
		{"aws_eks_cluster_auth ephemeral", func(t *testing.T) {
			e := aws.EphemeralResourceSchemas["aws_eks_cluster_auth"]
			if a := attrNamed(e.Block, "token"); e == nil || a == nil || !a.Computed || !a.Sensitive {
				t.Errorf("aws_eks_cluster_auth: %+v", e)
			}
		}},
		{"helm_release", func(t *testing.T) {
			b := helm.ResourceSchemas["helm_release"].Block
			m := attrNamed(b, "metadata")
			if m == nil || m.NestedType == nil || m.NestedType.Nesting != tfprotov6.SchemaObjectNestingModeSingle || !m.Computed {
				t.Fatalf("metadata: %+v", m)
			}
			if m.Type != nil {
				t.Error("a nested attribute must not also carry a type")
			}
			if a := attrNamed(b, "chart"); a == nil || !a.Required {
				t.Errorf("chart: %+v", a)
			}
		}},
		{"helm provider kubernetes", func(t *testing.T) {
			k := attrNamed(helm.Provider.Block, "kubernetes")
			if k == nil || k.NestedType == nil || k.NestedType.Nesting != tfprotov6.SchemaObjectNestingModeSingle {
				t.Fatalf("kubernetes: %+v", k)
			}
		}},
		{"kubernetes_namespace_v1", func(t *testing.T) {
			b := k8s.ResourceSchemas["kubernetes_namespace_v1"].Block
			md := blockNamed(b, "metadata")
			if md == nil || md.Nesting != tfprotov6.SchemaNestedBlockNestingModeList || md.MinItems != 1 || md.MaxItems != 1 {
				t.Fatalf("metadata: %+v", md)
			}
			if a := attrNamed(md.Block, "uid"); a == nil || !a.Computed {
				t.Errorf("metadata.uid: %+v", a)
			}
		}},
	} {
		t.Run(tc.name, tc.check)
	}
}

// TestRealSchemaPlanApply runs create/apply on real resource types.
func TestRealSchemaPlanApply(t *testing.T) {
	p, _ := realSchema(t, "aws")
	kp, _ := realSchema(t, "kubernetes")
	hp, _ := realSchema(t, "helm")
	for _, tc := range []struct {
		p        *Provider
		typeName string
		config   string
		want     map[string]string // path -> describe() after apply, or "known"
		planned  map[string]string // path -> describe() after plan
	}{
		{p, "aws_eks_cluster", `{"name": "c", "role_arn": "arn:aws:iam::1:role/r", "vpc_config": [{"subnet_ids": ["s1", "s2"]}]}`,
			map[string]string{"name": `"c"`, "identity[0].oidc[0].issuer": "known", "certificate_authority[0].data": "known", "vpc_config[0].vpc_id": "known"},
			map[string]string{"identity": "unknown", "vpc_config[0].vpc_id": "unknown", "vpc_config[0].subnet_ids": `["s1","s2"]`}},
		{p, "aws_db_instance", `{"instance_class": "db.t3.micro", "password_wo": "pw", "password_wo_version": 1}`,
			map[string]string{"password_wo": "null", "password_wo_version": "1", "endpoint": "known"},
			map[string]string{"password_wo": "null", "endpoint": "unknown"}},
		{kp, "kubernetes_namespace_v1", `{"metadata": [{"name": "langfuse"}]}`,
			map[string]string{"metadata[0].name": `"langfuse"`, "metadata[0].uid": "known"},
			map[string]string{"metadata[0].uid": "unknown", "metadata[0].name": `"langfuse"`}},
		{hp, "helm_release", `{"name": "langfuse", "chart": "langfuse", "namespace": "langfuse"}`,
			map[string]string{"metadata.revision": "1", "namespace": `"langfuse"`},
			map[string]string{"metadata": "unknown", "namespace": `"langfuse"`}},
	} {
		t.Run(tc.typeName, func(t *testing.T) {
			b := mustGet(t, tc.p.Schema.ResourceSchemas, tc.typeName).Block
			cfg := jsonValue(t, b.ValueType(), tc.config)
			planned, err := PlanCreate(b, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range tc.planned {
				if got := describe(valueAt(t, planned, path)); got != want {
					t.Errorf("planned %s = %s, want %s", path, got, want)
				}
			}
			state, err := (&Filler{TypeName: tc.typeName, Seed: Canonical(cfg)}).Fill(b, planned)
			if err != nil {
				t.Fatal(err)
			}
			if !state.IsFullyKnown() {
				t.Fatal("applied state not fully known")
			}
			for path, want := range tc.want {
				got := describe(valueAt(t, state, path))
				if (want == "known" && (got == "null" || got == "unknown")) || (want != "known" && got != want) {
					t.Errorf("%s = %s, want %s", path, got, want)
				}
			}
		})
	}
}
