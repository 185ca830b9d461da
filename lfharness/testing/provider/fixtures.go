package main

// Fixtures: values the tests choose for computed attributes (file named by LFK8S_STANDIN_FIXTURES).
//
//	{"data_sources":        {TYPE: {ATTR: value, ...}},
//	 "ephemeral_resources": {TYPE: {ATTR: value, ...}},
//	 "resources":           {TYPE: {ATTR: value, ...}},
//	 "behaviours":          {"journal": PATH, "rules": [...]}}
//
// ATTR is a top-level attribute (not a nested block) of TYPE; value is JSON matching the attribute's
// type (objects for objects and nested attributes, arrays for lists/sets/tuples). One file may hold
// the types of several providers: each stand-in uses only the types of its own schema.
// "behaviours" makes chosen applies slow, failing or deaf to cancellation (behaviours.go).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// Fixture sections.
const (
	SectionDataSources        = "data_sources"
	SectionEphemeralResources = "ephemeral_resources"
	SectionResources          = "resources"
)

// Fixtures is a loaded fixtures file.
type Fixtures struct {
	Path     string
	sections map[string]map[string]map[string]json.RawMessage
	// Behaviours is the "behaviours" section (behaviours.go); nil without one.
	Behaviours *Behaviours
}

// LoadFixtures reads a fixtures file. An empty path means no fixtures.
func LoadFixtures(path string) (*Fixtures, error) {
	fx := &Fixtures{Path: path, sections: map[string]map[string]map[string]json.RawMessage{}}
	if path == "" {
		return fx, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the fixtures file (%s): %w", envFixtures, err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("fixtures file %s: not a JSON object: %w", path, err)
	}
	for _, section := range sortedKeys(top) {
		switch section {
		case SectionDataSources, SectionEphemeralResources, SectionResources:
		case SectionBehaviours:
			b, err := parseBehaviours(path, top[section])
			if err != nil {
				return nil, err
			}
			fx.Behaviours = b
			continue
		default:
			return nil, fmt.Errorf("fixtures file %s: unknown key %q (allowed: %s, %s, %s, %s)", path, section,
				SectionDataSources, SectionEphemeralResources, SectionResources, SectionBehaviours)
		}
		var m map[string]map[string]json.RawMessage
		if err := json.Unmarshal(top[section], &m); err != nil {
			return nil, fmt.Errorf("fixtures file %s: %s must map type names to objects of attribute values: %w", path, section, err)
		}
		fx.sections[section] = m
	}
	return fx, nil
}

// For returns the fixture values of one type in one section, converted to the attributes' types.
// Fixtures for attributes the type does not have, for nested blocks and for non-computed attributes
// are errors (they could never be used).
func (fx *Fixtures) For(section, typeName string, b *Block) (map[string]tftypes.Value, error) {
	if fx == nil {
		return nil, nil
	}
	attrs := fx.sections[section][typeName]
	if len(attrs) == 0 {
		return nil, nil
	}
	out := make(map[string]tftypes.Value, len(attrs))
	for _, name := range sortedKeys(attrs) {
		where := fmt.Sprintf("fixtures file %s: %s.%s.%s", fx.Path, section, typeName, name)
		a, ok := b.Attributes[name]
		if !ok {
			if _, isBlock := b.BlockTypes[name]; isBlock {
				return nil, fmt.Errorf("%s: %s is a nested block; fixtures hold attributes only", where, name)
			}
			return nil, fmt.Errorf("%s: %s has no attribute %q (its attributes: %s)", where, typeName, name, strings.Join(b.attrNames, ", "))
		}
		if !a.Computed {
			return nil, fmt.Errorf("%s: %q is not a computed attribute of %s, so a fixture for it is never used", where, name, typeName)
		}
		v, err := ValueFromJSON(a.typ, attrs[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out[name] = v
	}
	return out, nil
}

// ValueFromJSON converts a JSON value into a value of type t (with Terraform's conversions between
// strings, numbers and bools; null is a null value).
func ValueFromJSON(t tftypes.Type, raw json.RawMessage) (tftypes.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return tftypes.Value{}, fmt.Errorf("not JSON: %w", err)
	}
	return convertJSON(t, x, "")
}

func jsonKind(x any) string {
	switch x.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a bool"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

func convertJSON(t tftypes.Type, x any, where string) (tftypes.Value, error) {
	fail := func(format string, args ...any) (tftypes.Value, error) {
		msg := fmt.Sprintf(format, args...)
		if where != "" {
			msg = "at " + where + ": " + msg
		}
		return tftypes.Value{}, fmt.Errorf("%s", msg)
	}
	if x == nil {
		return nullOf(t), nil
	}
	if t.Is(tftypes.DynamicPseudoType) {
		t = inferType(x)
	}
	switch tt := t.(type) {
	case tftypes.List, tftypes.Set:
		arr, ok := x.([]any)
		if !ok {
			return fail("want an array for %s, got %s", t, jsonKind(x))
		}
		var et tftypes.Type
		if l, ok := tt.(tftypes.List); ok {
			et = l.ElementType
		} else {
			et = tt.(tftypes.Set).ElementType
		}
		elems := make([]tftypes.Value, len(arr))
		for i, e := range arr {
			v, err := convertJSON(et, e, fmt.Sprintf("%s[%d]", where, i))
			if err != nil {
				return v, err
			}
			elems[i] = v
		}
		v, err := mk(t, elems)
		if err != nil {
			return fail("%v", err)
		}
		return v, nil
	case tftypes.Tuple:
		arr, ok := x.([]any)
		if !ok || len(arr) != len(tt.ElementTypes) {
			return fail("want an array of %d elements for %s, got %s", len(tt.ElementTypes), t, jsonKind(x))
		}
		elems := make([]tftypes.Value, len(arr))
		for i, e := range arr {
			v, err := convertJSON(tt.ElementTypes[i], e, fmt.Sprintf("%s[%d]", where, i))
			if err != nil {
				return v, err
			}
			elems[i] = v
		}
		return mk(t, elems)
	case tftypes.Map:
		obj, ok := x.(map[string]any)
		if !ok {
			return fail("want an object for %s, got %s", t, jsonKind(x))
		}
		elems := make(map[string]tftypes.Value, len(obj))
		for k, e := range obj {
			v, err := convertJSON(tt.ElementType, e, fmt.Sprintf("%s[%q]", where, k))
			if err != nil {
				return v, err
			}
			elems[k] = v
		}
		v, err := mk(t, elems)
		if err != nil {
			return fail("%v", err)
		}
		return v, nil
	case tftypes.Object:
		obj, ok := x.(map[string]any)
		if !ok {
			return fail("want an object for %s, got %s", t, jsonKind(x))
		}
		for k := range obj {
			if _, ok := tt.AttributeTypes[k]; !ok {
				names := sortedKeys(tt.AttributeTypes)
				return fail("unknown attribute %q (the object has: %s)", k, strings.Join(names, ", "))
			}
		}
		elems := make(map[string]tftypes.Value, len(tt.AttributeTypes))
		for k, at := range tt.AttributeTypes {
			v, err := convertJSON(at, obj[k], where+"."+k)
			if err != nil {
				return v, err
			}
			elems[k] = v
		}
		v, err := mk(t, elems)
		if err != nil {
			return fail("%v", err)
		}
		return v, nil
	}
	switch {
	case t.Is(tftypes.String):
		switch s := x.(type) {
		case string:
			return tftypes.NewValue(tftypes.String, s), nil
		case json.Number:
			return tftypes.NewValue(tftypes.String, s.String()), nil
		case bool:
			return tftypes.NewValue(tftypes.String, fmt.Sprint(s)), nil
		}
		return fail("want a string, got %s", jsonKind(x))
	case t.Is(tftypes.Number):
		var s string
		switch n := x.(type) {
		case json.Number:
			s = n.String()
		case string:
			s = n
		default:
			return fail("want a number, got %s", jsonKind(x))
		}
		f, _, err := big.ParseFloat(s, 10, 512, big.ToNearestEven)
		if err != nil {
			return fail("want a number, got %q", s)
		}
		return tftypes.NewValue(tftypes.Number, f), nil
	case t.Is(tftypes.Bool):
		switch b := x.(type) {
		case bool:
			return tftypes.NewValue(tftypes.Bool, b), nil
		case string:
			if b == "true" || b == "false" {
				return tftypes.NewValue(tftypes.Bool, b == "true"), nil
			}
		}
		return fail("want a bool, got %s", jsonKind(x))
	}
	return fail("cannot convert to %s", t)
}

// inferType is the type a JSON value gets where the schema says "dynamic".
func inferType(x any) tftypes.Type {
	switch v := x.(type) {
	case string:
		return tftypes.String
	case json.Number:
		return tftypes.Number
	case bool:
		return tftypes.Bool
	case []any:
		types := make([]tftypes.Type, len(v))
		for i, e := range v {
			types[i] = inferType(e)
		}
		return tftypes.Tuple{ElementTypes: types}
	case map[string]any:
		types := make(map[string]tftypes.Type, len(v))
		for k, e := range v {
			types[k] = inferType(e)
		}
		return tftypes.Object{AttributeTypes: types}
	}
	return tftypes.DynamicPseudoType
}
