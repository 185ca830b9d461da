package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProviderNameFromExecutable(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"terraform-provider-aws_v6.47.0", "aws"},
		{"terraform-provider-kubernetes_v2.38.0", "kubernetes"},
		{"terraform-provider-helm_v3.0.2", "helm"},
		{"terraform-provider-null_v3.2.4_x5", "null"},
		{"terraform-provider-null", "null"},
		{"standin", ""},
		{"terraform-provider-", ""},
	} {
		got, err := ProviderNameFromExecutable(tc.base)
		if got != tc.want || (tc.want == "" && (err == nil || !strings.Contains(err.Error(), tc.base))) {
			t.Errorf("%s: got %q, %v; want %q", tc.base, got, err, tc.want)
		}
	}
}

func TestProviderAddress(t *testing.T) {
	tests := []struct {
		name     string
		override string
		paths    []string
		want     string
		wantErr  bool
	}{
		{"mirror layout", "", []string{"/m/example.test/hashicorp/aws/6.47.0/linux_amd64/terraform-provider-aws_v6.47.0"},
			"example.test/hashicorp/aws", false},
		{"launch path first", "", []string{".terraform/providers/example.test/hashicorp/helm/3.0.2/linux_amd64/x",
			"/cache/standin/terraform-provider-standin-abc"}, "example.test/hashicorp/helm", false},
		{"override wins", "other.test/acme/null", []string{"/m/example.test/hashicorp/aws/1.0.0/linux_amd64/x"},
			"other.test/acme/null", false},
		{"no layout", "", []string{"/tmp/terraform-provider-aws_v6.47.0"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ProviderAddress(tc.override, tc.paths)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ProviderAddress(%q, %v) = %q, %v; want %q (error %v)", tc.override, tc.paths, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestFindSchema(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "terraform-provider-aws_v6.47.0")
	other := filepath.Join(t.TempDir(), "standin")

	if _, err := FindSchema("", []string{exe, other}); err == nil ||
		!strings.Contains(err.Error(), filepath.Join(dir, "schema.json.gz")) || !strings.Contains(err.Error(), filepath.Join(filepath.Dir(other), "schema.json")) {
		t.Errorf("missing schema: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "schema.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := FindSchema("", []string{other, exe}); err != nil || got != filepath.Join(dir, "schema.json") {
		t.Errorf("schema.json: %q %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "schema.json.gz"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := FindSchema("", []string{exe}); got != filepath.Join(dir, "schema.json.gz") {
		t.Errorf("schema.json.gz not preferred: %q", got)
	}
	if got, err := FindSchema("testdata/schema.json", []string{exe}); err != nil || got != "testdata/schema.json" {
		t.Errorf("override: %q %v", got, err)
	}
	if _, err := FindSchema("/nonexistent.json", []string{exe}); err == nil || !strings.Contains(err.Error(), envSchema+"=/nonexistent.json") {
		t.Errorf("bad override: %v", err)
	}
}
