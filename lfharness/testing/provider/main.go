// Command standin acts as a Terraform provider (protocol 6) by serving that provider's real schema
// with the semantics of Terraform's mock providers. See README.md.
//
// Installed as <mirror>/<host>/hashicorp/NAME/VERSION/OS_ARCH/terraform-provider-NAME_vVERSION with
// the schema next to it as schema.json.gz; the provider name comes from the executable's name.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"
)

const (
	envSchema   = "LFK8S_STANDIN_SCHEMA"
	envFixtures = "LFK8S_STANDIN_FIXTURES"
	// envReattach names a file: the stand-in then runs as a long-lived server (go-plugin's debug
	// mode) and writes TF_REATTACH_PROVIDERS='{...}' there, so many Terraform commands share one
	// process and one parsed schema instead of starting the provider each time.
	envReattach = "LFK8S_STANDIN_REATTACH_FILE"
	// envAddress overrides the provider address (HOST/NAMESPACE/NAME) read from the install path.
	envAddress = "LFK8S_STANDIN_ADDRESS"
)

// schemaFileNames are looked for, in order, next to the executable.
var schemaFileNames = []string{"schema.json.gz", "schema.json"}

var executableName = regexp.MustCompile(`^terraform-provider-([a-z0-9-]+?)(?:_v[0-9][^/]*)?(?:\.exe)?$`)

// ProviderNameFromExecutable parses NAME from terraform-provider-NAME_vVERSION.
func ProviderNameFromExecutable(base string) (string, error) {
	m := executableName.FindStringSubmatch(base)
	if m == nil {
		return "", fmt.Errorf("cannot tell which provider to stand in for from the executable name %q: want terraform-provider-NAME_vVERSION", base)
	}
	return m[1], nil
}

// ProviderAddress is the provider's source address, HOST/NAMESPACE/NAME, read from the install
// path: Terraform's mirror and its .terraform/providers both lay providers out as
// HOST/NAMESPACE/NAME/VERSION/OS_ARCH/terraform-provider-NAME_vVERSION. envAddress overrides.
func ProviderAddress(override string, exePaths []string) (string, error) {
	if override != "" {
		return override, nil
	}
	for _, exe := range exePaths {
		parts := strings.Split(filepath.ToSlash(filepath.Dir(exe)), "/")
		if len(parts) >= 5 {
			host, namespace, name := parts[len(parts)-5], parts[len(parts)-4], parts[len(parts)-3]
			if strings.Contains(host, ".") && namespace != "" && name != "" {
				return host + "/" + namespace + "/" + name, nil
			}
		}
	}
	return "", fmt.Errorf("cannot tell the provider address from %s: install the stand-in as "+
		"HOST/NAMESPACE/NAME/VERSION/OS_ARCH/terraform-provider-NAME_vVERSION, or set %s", strings.Join(exePaths, ", "), envAddress)
}

// executablePaths are the paths this program may have been started as: as launched (os.Args[0],
// which keeps a symlink's own name and directory; Terraform launches providers by a path relative
// to the working directory) and as resolved by os.Executable.
func executablePaths() []string {
	var paths []string
	if len(os.Args) > 0 && strings.ContainsRune(os.Args[0], filepath.Separator) {
		if abs, err := filepath.Abs(os.Args[0]); err == nil {
			paths = append(paths, abs)
		}
	}
	if exe, err := os.Executable(); err == nil {
		paths = append(paths, exe)
	}
	return paths
}

// FindSchema is the schema file to load: the override if set, else the first schema file next to
// one of the executable paths.
func FindSchema(override string, exePaths []string) (string, error) {
	if override != "" {
		if _, err := os.Stat(override); err != nil {
			return "", fmt.Errorf("%s=%s: %w", envSchema, override, err)
		}
		return override, nil
	}
	var tried []string
	seen := map[string]bool{}
	for _, exe := range exePaths {
		dir := filepath.Dir(exe)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		for _, name := range schemaFileNames {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			tried = append(tried, p)
		}
	}
	return "", fmt.Errorf("no provider schema found; tried %s (set %s to a schema file to override)", strings.Join(tried, ", "), envSchema)
}

func main() {
	paths := executablePaths()
	name := ""
	var nameErr error
	for _, p := range paths {
		if name, nameErr = ProviderNameFromExecutable(filepath.Base(p)); nameErr == nil {
			break
		}
	}
	if name == "" {
		fmt.Fprintln(os.Stderr, "provider stand-in:", nameErr)
		os.Exit(1)
	}

	p := &Provider{Name: name, FixturesPath: os.Getenv(envFixtures)}
	schemaPath, err := FindSchema(os.Getenv(envSchema), paths)
	if err == nil {
		p.Schema, err = ReadSchemaFile(schemaPath)
	}
	if err != nil {
		// Keep serving: Terraform shows the error as a diagnostic of the first RPC.
		p.SchemaErr = err
		fmt.Fprintf(os.Stderr, "provider stand-in (%s): %v\n", name, err)
	}

	var opts []tf6server.ServeOpt
	if file := os.Getenv(envReattach); file != "" {
		opts = append(opts, tf6server.WithManagedDebug(), tf6server.WithManagedDebugEnvFilePath(file),
			tf6server.WithManagedDebugStopSignals([]os.Signal{os.Interrupt, syscall.SIGTERM}))
	}
	address, err := ProviderAddress(os.Getenv(envAddress), paths)
	if err != nil {
		fmt.Fprintln(os.Stderr, "provider stand-in:", err)
		os.Exit(1)
	}
	if err := tf6server.Serve(address, func() tfprotov6.ProviderServer { return p }, opts...); err != nil {
		fmt.Fprintf(os.Stderr, "provider stand-in (%s): %v\n", name, err)
		os.Exit(1)
	}
}
