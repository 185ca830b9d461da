package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// ProviderSchema is one provider's entry of `terraform providers schema -json`. The provider and
// provider_meta blocks are parsed at once; resource, data source and ephemeral resource schemas are
// parsed on first use (a provider process usually needs a few of aws's 2300).
type ProviderSchema struct {
	Path                     string // where it was read from, for messages
	Provider                 *Schema
	ProviderMeta             *Schema
	ResourceSchemas          *SchemaSet
	DataSourceSchemas        *SchemaSet
	EphemeralResourceSchemas *SchemaSet
}

// SchemaSet is the schemas of one kind (resource_schemas, ...), parsed on first use.
type SchemaSet struct {
	group string // resource_schemas, data_source_schemas, ephemeral_resource_schemas
	path  string
	raw   map[string]json.RawMessage
	names []string

	mu     sync.Mutex
	parsed map[string]*Schema
}

func newSchemaSet(group, path string, raw map[string]json.RawMessage) *SchemaSet {
	if raw == nil {
		raw = map[string]json.RawMessage{}
	}
	return &SchemaSet{group: group, path: path, raw: raw, names: sortedKeys(raw), parsed: map[string]*Schema{}}
}

// Names are the type names, sorted.
func (ss *SchemaSet) Names() []string { return ss.names }

// Len is the number of types.
func (ss *SchemaSet) Len() int { return len(ss.names) }

// Get parses (once) and returns the schema of one type; ok is false if there is no such type.
func (ss *SchemaSet) Get(typeName string) (s *Schema, ok bool, err error) {
	if _, ok := ss.raw[typeName]; !ok {
		return nil, false, nil
	}
	ss.mu.Lock()
	s = ss.parsed[typeName]
	ss.mu.Unlock()
	if s != nil {
		return s, true, nil
	}
	s, err = ss.parse(typeName)
	if err != nil {
		return nil, true, err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if prev := ss.parsed[typeName]; prev != nil {
		return prev, true, nil
	}
	ss.parsed[typeName] = s
	return s, true, nil
}

func (ss *SchemaSet) parse(typeName string) (*Schema, error) {
	where := ss.group + "." + typeName
	s := &Schema{}
	if err := json.Unmarshal(ss.raw[typeName], s); err != nil {
		return nil, ss.errorf("%s: %v", where, err)
	}
	if err := s.resolve(where); err != nil {
		return nil, ss.errorf("%v", err)
	}
	return s, nil
}

// All parses every schema of the set, on all CPUs.
func (ss *SchemaSet) All() (map[string]*Schema, error) {
	workers := runtime.GOMAXPROCS(0)
	if workers > len(ss.names) {
		workers = len(ss.names)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(ss.names); i += workers {
				if _, _, err := ss.Get(ss.names[i]); err != nil {
					errs[w] = err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make(map[string]*Schema, len(ss.parsed))
	for k, v := range ss.parsed {
		out[k] = v
	}
	return out, nil
}

func (ss *SchemaSet) errorf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if ss.path != "" {
		return fmt.Errorf("provider schema %s: %s", ss.path, msg)
	}
	return fmt.Errorf("provider schema: %s", msg)
}

// Schema is one provider, resource, data source or ephemeral resource schema.
type Schema struct {
	Version int64  `json:"version"`
	Block   *Block `json:"block"`
}

// Block is a configuration block: attributes and nested blocks.
type Block struct {
	Attributes      map[string]*Attribute   `json:"attributes"`
	BlockTypes      map[string]*NestedBlock `json:"block_types"`
	Description     string                  `json:"description"`
	DescriptionKind string                  `json:"description_kind"`
	Deprecated      bool                    `json:"deprecated"`

	attrNames  []string // sorted
	blockNames []string // sorted
	typ        tftypes.Object
}

// Attribute is one attribute: either a cty type (Type) or nested attributes (NestedType).
type Attribute struct {
	Type            json.RawMessage `json:"type"`
	NestedType      *NestedObject   `json:"nested_type"`
	Description     string          `json:"description"`
	DescriptionKind string          `json:"description_kind"`
	Required        bool            `json:"required"`
	Optional        bool            `json:"optional"`
	Computed        bool            `json:"computed"`
	Sensitive       bool            `json:"sensitive"`
	WriteOnly       bool            `json:"write_only"`
	Deprecated      bool            `json:"deprecated"`

	typ tftypes.Type // the value type (for nested attributes: the collection of objects)
}

// NestedObject is the nested_type of an attribute.
type NestedObject struct {
	Attributes  map[string]*Attribute `json:"attributes"`
	NestingMode string                `json:"nesting_mode"`

	attrNames []string
	objTyp    tftypes.Object
}

// NestedBlock is one entry of block_types.
type NestedBlock struct {
	NestingMode string `json:"nesting_mode"`
	MinItems    int64  `json:"min_items"`
	MaxItems    int64  `json:"max_items"`
	Block       *Block `json:"block"`

	typ tftypes.Type
}

// ValueType is the type of the object a block holds.
func (b *Block) ValueType() tftypes.Type { return b.typ }

// ValueType is the type of the attribute's value.
func (a *Attribute) ValueType() tftypes.Type { return a.typ }

// ValueType is the type of the block's value in its parent (list/set/map of objects, or an object).
func (nb *NestedBlock) ValueType() tftypes.Type { return nb.typ }

// ReadSchemaFile reads a schema file (gzip or plain JSON, told apart by content).
func ReadSchemaFile(path string) (*ProviderSchema, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the provider schema: %w", err)
	}
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("provider schema %s: not a valid gzip file: %w", path, err)
		}
		raw, err = io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("provider schema %s: decompressing: %w", path, err)
		}
	}
	s, err := ParseSchema(raw, path)
	if err != nil {
		return nil, fmt.Errorf("provider schema %s: %w", path, err)
	}
	return s, nil
}

// ParseSchema decodes a schema document; path is only used in messages. The provider and
// provider_meta blocks are checked here, the other schemas on first use.
func ParseSchema(raw []byte, path string) (*ProviderSchema, error) {
	top, err := splitObject(raw)
	if err != nil {
		return nil, fmt.Errorf("not a provider schema document (a JSON object): %w", err)
	}
	s := &ProviderSchema{Path: path, Provider: &Schema{}}
	for _, key := range sortedKeys(top) {
		val := top[key]
		switch key {
		case "provider", "provider_meta":
			var sch *Schema
			if err := json.Unmarshal(val, &sch); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			if key == "provider" && sch != nil {
				s.Provider = sch
			} else if key == "provider_meta" {
				s.ProviderMeta = sch
			}
		case "resource_schemas", "data_source_schemas", "ephemeral_resource_schemas":
			var members map[string]json.RawMessage
			if string(val) != "null" {
				if members, err = splitObject(val); err != nil {
					return nil, fmt.Errorf("%s: %w", key, err)
				}
			}
			set := newSchemaSet(key, path, members)
			switch key {
			case "resource_schemas":
				s.ResourceSchemas = set
			case "data_source_schemas":
				s.DataSourceSchemas = set
			default:
				s.EphemeralResourceSchemas = set
			}
		}
		// Other members (functions, resource_identity_schemas, ...) are not served.
	}
	if s.ResourceSchemas == nil {
		s.ResourceSchemas = newSchemaSet("resource_schemas", path, nil)
	}
	if s.DataSourceSchemas == nil {
		s.DataSourceSchemas = newSchemaSet("data_source_schemas", path, nil)
	}
	if s.EphemeralResourceSchemas == nil {
		s.EphemeralResourceSchemas = newSchemaSet("ephemeral_resource_schemas", path, nil)
	}
	if err := s.Provider.resolve("provider"); err != nil {
		return nil, err
	}
	if s.ProviderMeta != nil {
		if err := s.ProviderMeta.resolve("provider_meta"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Schema) resolve(where string) error {
	if s.Block == nil {
		s.Block = &Block{}
	}
	return s.Block.resolve(where)
}

func (b *Block) resolve(where string) error {
	attrTypes := make(map[string]tftypes.Type, len(b.Attributes)+len(b.BlockTypes))
	b.attrNames = sortedKeys(b.Attributes)
	for _, name := range b.attrNames {
		a := b.Attributes[name]
		if a == nil {
			return fmt.Errorf("%s: attribute %s: empty", where, name)
		}
		if err := a.resolve(where + ": attribute " + name); err != nil {
			return err
		}
		attrTypes[name] = a.typ
	}
	b.blockNames = sortedKeys(b.BlockTypes)
	for _, name := range b.blockNames {
		nb := b.BlockTypes[name]
		if nb == nil || nb.Block == nil {
			nb = &NestedBlock{NestingMode: nbMode(nb), Block: &Block{}}
			b.BlockTypes[name] = nb
		}
		if _, dup := attrTypes[name]; dup {
			return fmt.Errorf("%s: %s is both an attribute and a nested block", where, name)
		}
		if err := nb.Block.resolve(where + ": block " + name); err != nil {
			return err
		}
		switch nb.NestingMode {
		case "single", "group":
			nb.typ = nb.Block.typ
		case "list":
			nb.typ = tftypes.List{ElementType: nb.Block.typ}
		case "set":
			nb.typ = tftypes.Set{ElementType: nb.Block.typ}
		case "map":
			nb.typ = tftypes.Map{ElementType: nb.Block.typ}
		default:
			return fmt.Errorf("%s: block %s: unknown nesting_mode %q (want single, list, set, map or group)", where, name, nb.NestingMode)
		}
		attrTypes[name] = nb.typ
	}
	b.typ = tftypes.Object{AttributeTypes: attrTypes}
	return nil
}

func nbMode(nb *NestedBlock) string {
	if nb == nil {
		return "single"
	}
	return nb.NestingMode
}

func (a *Attribute) resolve(where string) error {
	if a.NestedType != nil {
		no := a.NestedType
		attrTypes := make(map[string]tftypes.Type, len(no.Attributes))
		no.attrNames = sortedKeys(no.Attributes)
		for _, name := range no.attrNames {
			na := no.Attributes[name]
			if na == nil {
				return fmt.Errorf("%s: nested attribute %s: empty", where, name)
			}
			if err := na.resolve(where + "." + name); err != nil {
				return err
			}
			attrTypes[name] = na.typ
		}
		no.objTyp = tftypes.Object{AttributeTypes: attrTypes}
		switch no.NestingMode {
		case "single":
			a.typ = no.objTyp
		case "list":
			a.typ = tftypes.List{ElementType: no.objTyp}
		case "set":
			a.typ = tftypes.Set{ElementType: no.objTyp}
		case "map":
			a.typ = tftypes.Map{ElementType: no.objTyp}
		default:
			return fmt.Errorf("%s: unknown nested_type nesting_mode %q (want single, list, set or map)", where, no.NestingMode)
		}
		return nil
	}
	if len(a.Type) == 0 {
		return fmt.Errorf("%s: has neither type nor nested_type", where)
	}
	t, err := parseCtyTypeCached(a.Type)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	a.typ = t
	return nil
}

var ctyTypeCache sync.Map // string(type spec) -> tftypes.Type

// parseCtyTypeCached is ParseCtyType remembering the (few hundred distinct) specifications of a schema.
func parseCtyTypeCached(raw json.RawMessage) (tftypes.Type, error) {
	if t, ok := ctyTypeCache.Load(string(raw)); ok {
		return t.(tftypes.Type), nil
	}
	t, err := ParseCtyType(raw)
	if err != nil {
		return nil, err
	}
	ctyTypeCache.Store(string(raw), t)
	return t, nil
}

// ParseCtyType parses a cty JSON type specification ("string", ["list","string"],
// ["object",{"a":"string"}] (optionally with a list of optional attributes), ["tuple",[...]], "dynamic").
func ParseCtyType(raw json.RawMessage) (tftypes.Type, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty type specification")
	}
	if raw[0] == '"' {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return nil, fmt.Errorf("invalid type specification %s: %w", raw, err)
		}
		switch name {
		case "string":
			return tftypes.String, nil
		case "number":
			return tftypes.Number, nil
		case "bool":
			return tftypes.Bool, nil
		case "dynamic":
			return tftypes.DynamicPseudoType, nil
		}
		return nil, fmt.Errorf("unknown primitive type %q", name)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) < 2 {
		return nil, fmt.Errorf("invalid type specification %s", raw)
	}
	var kind string
	if err := json.Unmarshal(parts[0], &kind); err != nil {
		return nil, fmt.Errorf("invalid type specification %s: first element is not a string", raw)
	}
	switch kind {
	case "list", "set", "map":
		if len(parts) != 2 {
			return nil, fmt.Errorf("invalid type specification %s: %s takes one element type", raw, kind)
		}
		et, err := ParseCtyType(parts[1])
		if err != nil {
			return nil, err
		}
		switch kind {
		case "list":
			return tftypes.List{ElementType: et}, nil
		case "set":
			return tftypes.Set{ElementType: et}, nil
		default:
			return tftypes.Map{ElementType: et}, nil
		}
	case "object":
		var attrs map[string]json.RawMessage
		if err := json.Unmarshal(parts[1], &attrs); err != nil {
			return nil, fmt.Errorf("invalid object type %s: %w", raw, err)
		}
		types := make(map[string]tftypes.Type, len(attrs))
		for name, at := range attrs {
			t, err := ParseCtyType(at)
			if err != nil {
				return nil, fmt.Errorf("object attribute %s: %w", name, err)
			}
			types[name] = t
		}
		obj := tftypes.Object{AttributeTypes: types}
		if len(parts) == 3 {
			var opt []string
			if err := json.Unmarshal(parts[2], &opt); err != nil {
				return nil, fmt.Errorf("invalid object type %s: optional attributes: %w", raw, err)
			}
			if len(opt) > 0 {
				obj.OptionalAttributes = map[string]struct{}{}
				for _, o := range opt {
					obj.OptionalAttributes[o] = struct{}{}
				}
			}
		}
		return obj, nil
	case "tuple":
		var elems []json.RawMessage
		if err := json.Unmarshal(parts[1], &elems); err != nil {
			return nil, fmt.Errorf("invalid tuple type %s: %w", raw, err)
		}
		types := make([]tftypes.Type, len(elems))
		for i, e := range elems {
			t, err := ParseCtyType(e)
			if err != nil {
				return nil, fmt.Errorf("tuple element %d: %w", i, err)
			}
			types[i] = t
		}
		return tftypes.Tuple{ElementTypes: types}, nil
	}
	return nil, fmt.Errorf("unknown type kind %q in %s", kind, raw)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---- conversion to the protocol ----

func (s *Schema) proto() *tfprotov6.Schema {
	if s == nil {
		return nil
	}
	return &tfprotov6.Schema{Version: s.Version, Block: s.Block.proto()}
}

func (b *Block) proto() *tfprotov6.SchemaBlock {
	pb := &tfprotov6.SchemaBlock{
		Description:     b.Description,
		DescriptionKind: descriptionKind(b.DescriptionKind),
		Deprecated:      b.Deprecated,
	}
	for _, name := range b.attrNames {
		pb.Attributes = append(pb.Attributes, b.Attributes[name].proto(name))
	}
	for _, name := range b.blockNames {
		nb := b.BlockTypes[name]
		pb.BlockTypes = append(pb.BlockTypes, &tfprotov6.SchemaNestedBlock{
			TypeName: name,
			Block:    nb.Block.proto(),
			Nesting:  blockNesting(nb.NestingMode),
			MinItems: nb.MinItems,
			MaxItems: nb.MaxItems,
		})
	}
	return pb
}

func (a *Attribute) proto(name string) *tfprotov6.SchemaAttribute {
	pa := &tfprotov6.SchemaAttribute{
		Name:            name,
		Description:     a.Description,
		DescriptionKind: descriptionKind(a.DescriptionKind),
		Required:        a.Required,
		Optional:        a.Optional,
		Computed:        a.Computed,
		Sensitive:       a.Sensitive,
		WriteOnly:       a.WriteOnly,
		Deprecated:      a.Deprecated,
	}
	if a.NestedType != nil {
		obj := &tfprotov6.SchemaObject{Nesting: objectNesting(a.NestedType.NestingMode)}
		for _, n := range a.NestedType.attrNames {
			obj.Attributes = append(obj.Attributes, a.NestedType.Attributes[n].proto(n))
		}
		pa.NestedType = obj
	} else {
		pa.Type = a.typ
	}
	return pa
}

func descriptionKind(k string) tfprotov6.StringKind {
	if strings.EqualFold(k, "markdown") {
		return tfprotov6.StringKindMarkdown
	}
	return tfprotov6.StringKindPlain
}

func blockNesting(mode string) tfprotov6.SchemaNestedBlockNestingMode {
	switch mode {
	case "single":
		return tfprotov6.SchemaNestedBlockNestingModeSingle
	case "list":
		return tfprotov6.SchemaNestedBlockNestingModeList
	case "set":
		return tfprotov6.SchemaNestedBlockNestingModeSet
	case "map":
		return tfprotov6.SchemaNestedBlockNestingModeMap
	case "group":
		return tfprotov6.SchemaNestedBlockNestingModeGroup
	}
	return tfprotov6.SchemaNestedBlockNestingModeInvalid
}

func objectNesting(mode string) tfprotov6.SchemaObjectNestingMode {
	switch mode {
	case "single":
		return tfprotov6.SchemaObjectNestingModeSingle
	case "list":
		return tfprotov6.SchemaObjectNestingModeList
	case "set":
		return tfprotov6.SchemaObjectNestingModeSet
	case "map":
		return tfprotov6.SchemaObjectNestingModeMap
	}
	return tfprotov6.SchemaObjectNestingModeInvalid
}

func (ss *SchemaSet) proto() (map[string]*tfprotov6.Schema, error) {
	all, err := ss.All()
	if err != nil {
		return nil, err
	}
	out := make(map[string]*tfprotov6.Schema, len(all))
	for name, s := range all {
		out[name] = s.proto()
	}
	return out, nil
}
