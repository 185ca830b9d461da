package main

// The tfprotov6.ProviderServer: Terraform's mock-provider semantics over a real provider's schema.

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// Provider serves one provider's schema with mock semantics.
type Provider struct {
	// Name is the provider's local name (aws, helm, ...), used in messages.
	Name string
	// Schema is nil when SchemaErr says why it could not be loaded; every RPC then reports SchemaErr.
	Schema    *ProviderSchema
	SchemaErr error
	// FixturesPath is the fixtures file (may be empty), loaded on first use and again whenever it changes.
	FixturesPath string

	fixturesMu     sync.Mutex
	fixturesLoaded bool
	fixturesStamp  fileStamp
	fixtures       *Fixtures
	fixturesErr    error
	behaviours     behaviourState

	protoOnce   sync.Once
	protoSchema *tfprotov6.GetProviderSchemaResponse
	protoErr    error
}

var _ tfprotov6.ProviderServer = (*Provider)(nil)

func (p *Provider) capabilities() *tfprotov6.ServerCapabilities {
	return &tfprotov6.ServerCapabilities{PlanDestroy: true, GetProviderSchemaOptional: true}
}

func errDiag(summary, detail string) []*tfprotov6.Diagnostic {
	return []*tfprotov6.Diagnostic{{Severity: tfprotov6.DiagnosticSeverityError, Summary: summary, Detail: detail}}
}

func (p *Provider) schemaDiags() []*tfprotov6.Diagnostic {
	if p.SchemaErr == nil && p.Schema != nil {
		return nil
	}
	err := p.SchemaErr
	if err == nil {
		err = fmt.Errorf("no schema loaded")
	}
	return errDiag(fmt.Sprintf("Provider stand-in (%s) has no schema", p.Name), err.Error())
}

func (p *Provider) notSupported(what string) []*tfprotov6.Diagnostic {
	return errDiag(fmt.Sprintf("%s is not supported by the provider stand-in (%s)", what, p.Name),
		fmt.Sprintf("This %s provider is a stand-in serving the real provider's schema with Terraform's mock-provider semantics; it has no %s.", p.Name, what))
}

func (p *Provider) failure(rpc, typeName string, err error) []*tfprotov6.Diagnostic {
	return errDiag(fmt.Sprintf("Provider stand-in (%s): %s of %s failed", p.Name, rpc, typeName), err.Error())
}

func (p *Provider) lookup(kind, typeName string) (*Schema, []*tfprotov6.Diagnostic) {
	if d := p.schemaDiags(); d != nil {
		return nil, d
	}
	var set *SchemaSet
	switch kind {
	case "resource":
		set = p.Schema.ResourceSchemas
	case "data source":
		set = p.Schema.DataSourceSchemas
	case "ephemeral resource":
		set = p.Schema.EphemeralResourceSchemas
	}
	s, ok, err := set.Get(typeName)
	if err != nil {
		return nil, errDiag(fmt.Sprintf("Provider stand-in (%s): the schema of %s %s is not usable", p.Name, kind, typeName), err.Error())
	}
	if !ok {
		return nil, errDiag(fmt.Sprintf("Provider stand-in (%s) has no %s type %s", p.Name, kind, typeName),
			fmt.Sprintf("The schema the stand-in serves has no %s named %q.", kind, typeName))
	}
	return s, nil
}

// loadFixtures reads the fixtures file on first use, and again whenever its size or modification
// time has changed: a stand-in served once for a whole test session (TF_REATTACH_PROVIDERS) then
// sees a fixture a test rewrote between two Terraform commands, as one started per command does.
func (p *Provider) loadFixtures() (*Fixtures, error) {
	p.fixturesMu.Lock()
	defer p.fixturesMu.Unlock()
	stamp := statFile(p.FixturesPath)
	if !p.fixturesLoaded || stamp != p.fixturesStamp {
		p.fixtures, p.fixturesErr = LoadFixtures(p.FixturesPath)
		p.fixturesLoaded, p.fixturesStamp = true, stamp
	}
	return p.fixtures, p.fixturesErr
}

// fileStamp tells a rewritten file from the one read before; an absent file has size -1.
type fileStamp struct {
	size    int64
	modNano int64
}

func statFile(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	info, err := os.Stat(path)
	if err != nil {
		return fileStamp{size: -1}
	}
	return fileStamp{size: info.Size(), modNano: info.ModTime().UnixNano()}
}

func (p *Provider) fixturesFor(section, typeName string, b *Block) (map[string]tftypes.Value, error) {
	fx, err := p.loadFixtures()
	if err != nil {
		return nil, err
	}
	return fx.For(section, typeName, b)
}

func dyn(t tftypes.Type, v tftypes.Value) (*tfprotov6.DynamicValue, error) {
	dv, err := tfprotov6.NewDynamicValue(t, v)
	if err != nil {
		return nil, fmt.Errorf("encoding the result: %w", err)
	}
	return &dv, nil
}

func undyn(name string, t tftypes.Type, dv *tfprotov6.DynamicValue) (tftypes.Value, error) {
	if dv == nil {
		return nullOf(t), nil
	}
	v, err := dv.Unmarshal(t)
	if err != nil {
		return v, fmt.Errorf("decoding %s: %w", name, err)
	}
	return v, nil
}

// ---- provider-level RPCs ----

func (p *Provider) GetMetadata(ctx context.Context, req *tfprotov6.GetMetadataRequest) (*tfprotov6.GetMetadataResponse, error) {
	resp := &tfprotov6.GetMetadataResponse{ServerCapabilities: p.capabilities(), Diagnostics: p.schemaDiags()}
	if p.Schema == nil {
		return resp, nil
	}
	for _, n := range p.Schema.ResourceSchemas.Names() {
		resp.Resources = append(resp.Resources, tfprotov6.ResourceMetadata{TypeName: n})
	}
	for _, n := range p.Schema.DataSourceSchemas.Names() {
		resp.DataSources = append(resp.DataSources, tfprotov6.DataSourceMetadata{TypeName: n})
	}
	for _, n := range p.Schema.EphemeralResourceSchemas.Names() {
		resp.EphemeralResources = append(resp.EphemeralResources, tfprotov6.EphemeralResourceMetadata{TypeName: n})
	}
	return resp, nil
}

func (p *Provider) GetProviderSchema(ctx context.Context, req *tfprotov6.GetProviderSchemaRequest) (*tfprotov6.GetProviderSchemaResponse, error) {
	if d := p.schemaDiags(); d != nil {
		return &tfprotov6.GetProviderSchemaResponse{ServerCapabilities: p.capabilities(), Diagnostics: d}, nil
	}
	p.protoOnce.Do(func() { p.protoSchema, p.protoErr = p.Schema.Proto(p.capabilities()) })
	if p.protoErr != nil {
		return &tfprotov6.GetProviderSchemaResponse{ServerCapabilities: p.capabilities(),
			Diagnostics: errDiag(fmt.Sprintf("Provider stand-in (%s) has an unusable schema", p.Name), p.protoErr.Error())}, nil
	}
	return p.protoSchema, nil
}

// Proto is the GetProviderSchema response for the schema (parsing every schema).
func (s *ProviderSchema) Proto(caps *tfprotov6.ServerCapabilities) (*tfprotov6.GetProviderSchemaResponse, error) {
	resp := &tfprotov6.GetProviderSchemaResponse{
		ServerCapabilities: caps,
		Provider:           s.Provider.proto(),
		ProviderMeta:       s.ProviderMeta.proto(),
		Functions:          map[string]*tfprotov6.Function{},
	}
	var err error
	if resp.ResourceSchemas, err = s.ResourceSchemas.proto(); err != nil {
		return nil, err
	}
	if resp.DataSourceSchemas, err = s.DataSourceSchemas.proto(); err != nil {
		return nil, err
	}
	if resp.EphemeralResourceSchemas, err = s.EphemeralResourceSchemas.proto(); err != nil {
		return nil, err
	}
	return resp, nil
}

func (p *Provider) GetResourceIdentitySchemas(ctx context.Context, req *tfprotov6.GetResourceIdentitySchemasRequest) (*tfprotov6.GetResourceIdentitySchemasResponse, error) {
	return &tfprotov6.GetResourceIdentitySchemasResponse{IdentitySchemas: map[string]*tfprotov6.ResourceIdentitySchema{}}, nil
}

func (p *Provider) ValidateProviderConfig(ctx context.Context, req *tfprotov6.ValidateProviderConfigRequest) (*tfprotov6.ValidateProviderConfigResponse, error) {
	return &tfprotov6.ValidateProviderConfigResponse{PreparedConfig: req.Config, Diagnostics: p.schemaDiags()}, nil
}

func (p *Provider) ConfigureProvider(ctx context.Context, req *tfprotov6.ConfigureProviderRequest) (*tfprotov6.ConfigureProviderResponse, error) {
	return &tfprotov6.ConfigureProviderResponse{Diagnostics: p.schemaDiags()}, nil
}

func (p *Provider) StopProvider(ctx context.Context, req *tfprotov6.StopProviderRequest) (*tfprotov6.StopProviderResponse, error) {
	return &tfprotov6.StopProviderResponse{}, nil
}

// ---- resources ----

func (p *Provider) ValidateResourceConfig(ctx context.Context, req *tfprotov6.ValidateResourceConfigRequest) (*tfprotov6.ValidateResourceConfigResponse, error) {
	_, d := p.lookup("resource", req.TypeName)
	return &tfprotov6.ValidateResourceConfigResponse{Diagnostics: d}, nil
}

func (p *Provider) UpgradeResourceState(ctx context.Context, req *tfprotov6.UpgradeResourceStateRequest) (*tfprotov6.UpgradeResourceStateResponse, error) {
	s, d := p.lookup("resource", req.TypeName)
	if d != nil {
		return &tfprotov6.UpgradeResourceStateResponse{Diagnostics: d}, nil
	}
	v, err := UpgradeState(s.Block, req.RawState)
	if err != nil {
		return &tfprotov6.UpgradeResourceStateResponse{Diagnostics: p.failure("UpgradeResourceState", req.TypeName, err)}, nil
	}
	dv, err := dyn(s.Block.typ, v)
	if err != nil {
		return &tfprotov6.UpgradeResourceStateResponse{Diagnostics: p.failure("UpgradeResourceState", req.TypeName, err)}, nil
	}
	return &tfprotov6.UpgradeResourceStateResponse{UpgradedState: dv}, nil
}

// UpgradeState decodes a stored state with the current schema, dropping attributes the schema no
// longer has.
func UpgradeState(b *Block, raw *tfprotov6.RawState) (tftypes.Value, error) {
	if raw == nil {
		return nullOf(b.typ), nil
	}
	if raw.Flatmap != nil && raw.JSON == nil {
		return tftypes.Value{}, fmt.Errorf("flatmap state is not supported by the stand-in")
	}
	if raw.JSON == nil {
		return nullOf(b.typ), nil
	}
	v, err := raw.UnmarshalWithOpts(b.typ, tfprotov6.UnmarshalOpts{
		ValueFromJSONOpts: tftypes.ValueFromJSONOpts{IgnoreUndefinedAttributes: true},
	})
	if err != nil {
		return v, fmt.Errorf("decoding the stored state with the current schema: %w", err)
	}
	return v, nil
}

func (p *Provider) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	return &tfprotov6.ReadResourceResponse{NewState: req.CurrentState, Private: req.Private}, nil
}

func (p *Provider) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	s, d := p.lookup("resource", req.TypeName)
	if d != nil {
		return &tfprotov6.PlanResourceChangeResponse{Diagnostics: d}, nil
	}
	fail := func(err error) (*tfprotov6.PlanResourceChangeResponse, error) {
		return &tfprotov6.PlanResourceChangeResponse{Diagnostics: p.failure("PlanResourceChange", req.TypeName, err)}, nil
	}
	t := s.Block.typ
	proposed, err := undyn("the proposed new state", t, req.ProposedNewState)
	if err != nil {
		return fail(err)
	}
	prior, err := undyn("the prior state", t, req.PriorState)
	if err != nil {
		return fail(err)
	}
	var planned tftypes.Value
	switch {
	case proposed.IsNull():
		planned = proposed
	case prior.IsNull():
		planned, err = PlanCreate(s.Block, proposed)
	default:
		planned, err = PlanUpdate(s.Block, proposed)
	}
	if err != nil {
		return fail(err)
	}
	dv, err := dyn(t, planned)
	if err != nil {
		return fail(err)
	}
	return &tfprotov6.PlanResourceChangeResponse{PlannedState: dv, PlannedPrivate: req.PriorPrivate}, nil
}

func (p *Provider) ApplyResourceChange(ctx context.Context, req *tfprotov6.ApplyResourceChangeRequest) (*tfprotov6.ApplyResourceChangeResponse, error) {
	s, d := p.lookup("resource", req.TypeName)
	if d != nil {
		return &tfprotov6.ApplyResourceChangeResponse{Diagnostics: d}, nil
	}
	fail := func(err error) (*tfprotov6.ApplyResourceChangeResponse, error) {
		return &tfprotov6.ApplyResourceChangeResponse{Diagnostics: p.failure("ApplyResourceChange", req.TypeName, err)}, nil
	}
	t := s.Block.typ
	planned, err := undyn("the planned state", t, req.PlannedState)
	if err != nil {
		return fail(err)
	}
	prior, err := undyn("the prior state", t, req.PriorState)
	if err != nil {
		return fail(err)
	}
	op := OpUpdate
	switch {
	case planned.IsNull():
		op = OpDelete
	case prior.IsNull():
		op = OpCreate
	}
	apply := func() (tftypes.Value, error) {
		if op == OpDelete {
			return planned, nil
		}
		return p.applied(req, s.Block, planned)
	}
	// A behaviour (behaviours.go) may delay the call, fail it or answer for an interrupted one.
	newState, diags, err := p.behave(ctx, req.TypeName, op, s.Block, prior, planned, apply)
	if err != nil {
		return fail(err)
	}
	dv, err := dyn(t, newState)
	if err != nil {
		return fail(err)
	}
	var private []byte
	if !newState.IsNull() {
		private = req.PlannedPrivate
	}
	return &tfprotov6.ApplyResourceChangeResponse{NewState: dv, Private: private, Diagnostics: diags}, nil
}

// applied is the new state of a create or update: the planned state with every unknown filled
// (resource fixture, else placeholder).
func (p *Provider) applied(req *tfprotov6.ApplyResourceChangeRequest, b *Block, planned tftypes.Value) (tftypes.Value, error) {
	config, err := undyn("the configuration", b.typ, req.Config)
	if err != nil {
		return tftypes.Value{}, err
	}
	// What a write-only argument carried, as digests on stderr (the server's log): see writeonly.go.
	if err := WriteOnlyRecord(os.Stderr, req.TypeName, b, config); err != nil {
		return tftypes.Value{}, err
	}
	fixtures, err := p.fixturesFor(SectionResources, req.TypeName, b)
	if err != nil {
		return tftypes.Value{}, err
	}
	seed, err := Seed(b, config)
	if err != nil {
		return tftypes.Value{}, err
	}
	f := &Filler{TypeName: req.TypeName, Fixtures: fixtures, Seed: seed}
	return f.Fill(b, planned)
}

func (p *Provider) ImportResourceState(ctx context.Context, req *tfprotov6.ImportResourceStateRequest) (*tfprotov6.ImportResourceStateResponse, error) {
	return &tfprotov6.ImportResourceStateResponse{Diagnostics: p.notSupported("Importing " + req.TypeName)}, nil
}

func (p *Provider) MoveResourceState(ctx context.Context, req *tfprotov6.MoveResourceStateRequest) (*tfprotov6.MoveResourceStateResponse, error) {
	return &tfprotov6.MoveResourceStateResponse{Diagnostics: p.notSupported("Moving resource state to " + req.TargetTypeName)}, nil
}

func (p *Provider) UpgradeResourceIdentity(ctx context.Context, req *tfprotov6.UpgradeResourceIdentityRequest) (*tfprotov6.UpgradeResourceIdentityResponse, error) {
	return &tfprotov6.UpgradeResourceIdentityResponse{Diagnostics: p.notSupported("Upgrading the resource identity of " + req.TypeName)}, nil
}

func (p *Provider) GenerateResourceConfig(ctx context.Context, req *tfprotov6.GenerateResourceConfigRequest) (*tfprotov6.GenerateResourceConfigResponse, error) {
	return &tfprotov6.GenerateResourceConfigResponse{Diagnostics: p.notSupported("Generating configuration for " + req.TypeName)}, nil
}

// ---- data sources and ephemeral resources ----

func (p *Provider) ValidateDataResourceConfig(ctx context.Context, req *tfprotov6.ValidateDataResourceConfigRequest) (*tfprotov6.ValidateDataResourceConfigResponse, error) {
	_, d := p.lookup("data source", req.TypeName)
	return &tfprotov6.ValidateDataResourceConfigResponse{Diagnostics: d}, nil
}

// readComputed is the result of a data source or ephemeral resource: the configuration with its
// null computed attributes filled (fixtures first, then placeholders).
func (p *Provider) readComputed(kind, section, typeName string, cfg *tfprotov6.DynamicValue) (*tfprotov6.DynamicValue, error) {
	s, d := p.lookup(kind, typeName)
	if d != nil {
		return nil, diagError{d}
	}
	t := s.Block.typ
	config, err := undyn("the configuration", t, cfg)
	if err != nil {
		return nil, err
	}
	if config.IsNull() {
		config, err = mk(t, nullObjectFields(s.Block))
		if err != nil {
			return nil, err
		}
	}
	fixtures, err := p.fixturesFor(section, typeName, s.Block)
	if err != nil {
		return nil, err
	}
	seed, err := Seed(s.Block, config)
	if err != nil {
		return nil, err
	}
	f := &Filler{TypeName: typeName, FillComputedNulls: true, Fixtures: fixtures, Seed: seed}
	state, err := f.Fill(s.Block, config)
	if err != nil {
		return nil, err
	}
	return dyn(t, state)
}

func nullObjectFields(b *Block) map[string]tftypes.Value {
	m := map[string]tftypes.Value{}
	for k, t := range b.typ.AttributeTypes {
		m[k] = nullOf(t)
	}
	return m
}

type diagError struct{ diags []*tfprotov6.Diagnostic }

func (e diagError) Error() string { return e.diags[0].Summary }

func (p *Provider) diagsFor(rpc, typeName string, err error) []*tfprotov6.Diagnostic {
	if de, ok := err.(diagError); ok {
		return de.diags
	}
	return p.failure(rpc, typeName, err)
}

func (p *Provider) ReadDataSource(ctx context.Context, req *tfprotov6.ReadDataSourceRequest) (*tfprotov6.ReadDataSourceResponse, error) {
	dv, err := p.readComputed("data source", SectionDataSources, req.TypeName, req.Config)
	if err != nil {
		return &tfprotov6.ReadDataSourceResponse{Diagnostics: p.diagsFor("ReadDataSource", req.TypeName, err)}, nil
	}
	return &tfprotov6.ReadDataSourceResponse{State: dv}, nil
}

func (p *Provider) ValidateEphemeralResourceConfig(ctx context.Context, req *tfprotov6.ValidateEphemeralResourceConfigRequest) (*tfprotov6.ValidateEphemeralResourceConfigResponse, error) {
	_, d := p.lookup("ephemeral resource", req.TypeName)
	return &tfprotov6.ValidateEphemeralResourceConfigResponse{Diagnostics: d}, nil
}

func (p *Provider) OpenEphemeralResource(ctx context.Context, req *tfprotov6.OpenEphemeralResourceRequest) (*tfprotov6.OpenEphemeralResourceResponse, error) {
	dv, err := p.readComputed("ephemeral resource", SectionEphemeralResources, req.TypeName, req.Config)
	if err != nil {
		return &tfprotov6.OpenEphemeralResourceResponse{Diagnostics: p.diagsFor("OpenEphemeralResource", req.TypeName, err)}, nil
	}
	return &tfprotov6.OpenEphemeralResourceResponse{Result: dv}, nil
}

func (p *Provider) RenewEphemeralResource(ctx context.Context, req *tfprotov6.RenewEphemeralResourceRequest) (*tfprotov6.RenewEphemeralResourceResponse, error) {
	return &tfprotov6.RenewEphemeralResourceResponse{Private: req.Private}, nil
}

func (p *Provider) CloseEphemeralResource(ctx context.Context, req *tfprotov6.CloseEphemeralResourceRequest) (*tfprotov6.CloseEphemeralResourceResponse, error) {
	return &tfprotov6.CloseEphemeralResourceResponse{}, nil
}

// ---- functions ----

func (p *Provider) GetFunctions(ctx context.Context, req *tfprotov6.GetFunctionsRequest) (*tfprotov6.GetFunctionsResponse, error) {
	return &tfprotov6.GetFunctionsResponse{Functions: map[string]*tfprotov6.Function{}}, nil
}

func (p *Provider) CallFunction(ctx context.Context, req *tfprotov6.CallFunctionRequest) (*tfprotov6.CallFunctionResponse, error) {
	return &tfprotov6.CallFunctionResponse{Error: &tfprotov6.FunctionError{
		Text: fmt.Sprintf("Calling provider function %s is not supported by the provider stand-in (%s)", req.Name, p.Name),
	}}, nil
}
