package main

// The value transforms behind the RPCs: the planned state of a resource (PlanResourceChange) and the
// filling of values Terraform cannot know (ApplyResourceChange, ReadDataSource, OpenEphemeralResource).

import (
	"fmt"
	"math/big"
	"strconv"

	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// mk builds a value, returning an error where tftypes.NewValue would panic.
func mk(t tftypes.Type, val any) (tftypes.Value, error) {
	if err := tftypes.ValidateValue(t, val); err != nil {
		return tftypes.Value{}, err
	}
	return tftypes.NewValue(t, val), nil
}

func nullOf(t tftypes.Type) tftypes.Value    { return tftypes.NewValue(t, nil) }
func unknownOf(t tftypes.Type) tftypes.Value { return tftypes.NewValue(t, tftypes.UnknownValue) }

// loc is where a value sits in a resource: the attribute path as Terraform writes it
// (identity[0].oidc[0].issuer) and the name of the innermost attribute (issuer).
type loc struct {
	path string
	name string
}

func (l loc) attr(name string) loc {
	if l.path == "" {
		return loc{path: name, name: name}
	}
	return loc{path: l.path + "." + name, name: name}
}

func (l loc) index(i int) loc { return loc{path: l.path + "[" + strconv.Itoa(i) + "]", name: l.name} }

func (l loc) key(k string) loc { return loc{path: l.path + "[" + strconv.Quote(k) + "]", name: l.name} }

func (l loc) errorf(format string, args ...any) error {
	where := l.path
	if where == "" {
		where = "(the whole object)"
	}
	return fmt.Errorf("attribute %s: %s", where, fmt.Sprintf(format, args...))
}

// eachElement applies f to the elements of a collection of objects held by a nested block or nested
// attribute (mode single/group: the value itself) and rebuilds the collection with type t.
func eachElement(mode string, t tftypes.Type, v tftypes.Value, at loc, f func(tftypes.Value, loc) (tftypes.Value, error)) (tftypes.Value, error) {
	if v.IsNull() || !v.IsKnown() {
		if mode == "single" || mode == "group" {
			return f(v, at)
		}
		return v, nil
	}
	switch mode {
	case "single", "group":
		return f(v, at)
	case "list", "set":
		var elems []tftypes.Value
		if err := v.As(&elems); err != nil {
			return v, at.errorf("%v", err)
		}
		out := make([]tftypes.Value, len(elems))
		for i, e := range elems {
			ne, err := f(e, at.index(i))
			if err != nil {
				return v, err
			}
			out[i] = ne
		}
		nv, err := mk(t, out)
		if err != nil {
			return v, at.errorf("%v", err)
		}
		return nv, nil
	case "map":
		var elems map[string]tftypes.Value
		if err := v.As(&elems); err != nil {
			return v, at.errorf("%v", err)
		}
		out := make(map[string]tftypes.Value, len(elems))
		for _, k := range sortedKeys(elems) {
			ne, err := f(elems[k], at.key(k))
			if err != nil {
				return v, err
			}
			out[k] = ne
		}
		nv, err := mk(t, out)
		if err != nil {
			return v, at.errorf("%v", err)
		}
		return nv, nil
	}
	return v, at.errorf("unknown nesting mode %q", mode)
}

// objectFields splits a known, non-null object value into its attributes.
func objectFields(v tftypes.Value, at loc) (map[string]tftypes.Value, error) {
	var m map[string]tftypes.Value
	if err := v.As(&m); err != nil {
		return nil, at.errorf("%v", err)
	}
	if m == nil {
		m = map[string]tftypes.Value{}
	}
	return m, nil
}

func fieldOrNull(m map[string]tftypes.Value, name string, t tftypes.Type) tftypes.Value {
	if v, ok := m[name]; ok && v.Type() != nil {
		return v
	}
	return nullOf(t)
}

// ---- PlanResourceChange ----

// PlanCreate is the planned state of a resource being created: the proposed new state with every
// null computed attribute unknown (also inside nested blocks and nested attributes) and every
// write-only attribute null.
func PlanCreate(b *Block, proposed tftypes.Value) (tftypes.Value, error) {
	return planBlock(b, proposed, loc{}, true)
}

// PlanUpdate is the planned state of a resource being updated: the proposed new state with every
// write-only attribute null.
func PlanUpdate(b *Block, proposed tftypes.Value) (tftypes.Value, error) {
	return planBlock(b, proposed, loc{}, false)
}

func planBlock(b *Block, v tftypes.Value, at loc, create bool) (tftypes.Value, error) {
	if v.IsNull() || !v.IsKnown() {
		return v, nil
	}
	m, err := objectFields(v, at)
	if err != nil {
		return v, err
	}
	out := make(map[string]tftypes.Value, len(b.attrNames)+len(b.blockNames))
	for _, name := range b.attrNames {
		a := b.Attributes[name]
		nv, err := planAttr(a, fieldOrNull(m, name, a.typ), at.attr(name), create)
		if err != nil {
			return v, err
		}
		out[name] = nv
	}
	for _, name := range b.blockNames {
		nb := b.BlockTypes[name]
		nv, err := eachElement(nb.NestingMode, nb.typ, fieldOrNull(m, name, nb.typ), at.attr(name), func(e tftypes.Value, el loc) (tftypes.Value, error) {
			return planBlock(nb.Block, e, el, create)
		})
		if err != nil {
			return v, err
		}
		out[name] = nv
	}
	nv, err := mk(b.typ, out)
	if err != nil {
		return v, at.errorf("%v", err)
	}
	return nv, nil
}

func planAttr(a *Attribute, v tftypes.Value, at loc, create bool) (tftypes.Value, error) {
	switch {
	case a.WriteOnly:
		return nullOf(a.typ), nil
	case v.IsNull() && a.Computed && create:
		return unknownOf(a.typ), nil
	case a.NestedType != nil && !v.IsNull() && v.IsKnown():
		no := a.NestedType
		return eachElement(no.NestingMode, a.typ, v, at, func(e tftypes.Value, el loc) (tftypes.Value, error) {
			return planNestedObject(no, e, el, create)
		})
	}
	return v, nil
}

func planNestedObject(no *NestedObject, v tftypes.Value, at loc, create bool) (tftypes.Value, error) {
	if v.IsNull() || !v.IsKnown() {
		return v, nil
	}
	m, err := objectFields(v, at)
	if err != nil {
		return v, err
	}
	out := make(map[string]tftypes.Value, len(no.attrNames))
	for _, name := range no.attrNames {
		a := no.Attributes[name]
		nv, err := planAttr(a, fieldOrNull(m, name, a.typ), at.attr(name), create)
		if err != nil {
			return v, err
		}
		out[name] = nv
	}
	nv, err := mk(no.objTyp, out)
	if err != nil {
		return v, at.errorf("%v", err)
	}
	return nv, nil
}

// ---- filling values: ApplyResourceChange, ReadDataSource, OpenEphemeralResource ----

// Filler replaces what Terraform cannot know with fixtures or placeholders.
type Filler struct {
	TypeName string
	// FillComputedNulls also fills computed attributes that are null (data sources, ephemeral
	// resources); without it only unknown values are replaced (apply).
	FillComputedNulls bool
	// Fixtures are values for top-level attributes, used before placeholders.
	Fixtures map[string]tftypes.Value
	// Seed makes placeholders depend on the configuration (see Canonical).
	Seed string
}

// Fill returns v (an object of b's type) with every unknown value (and, with FillComputedNulls,
// every null computed attribute) replaced; write-only attributes become null.
func (f *Filler) Fill(b *Block, v tftypes.Value) (tftypes.Value, error) {
	if v.IsNull() {
		return v, nil
	}
	return f.block(b, v, loc{}, true)
}

func (f *Filler) block(b *Block, v tftypes.Value, at loc, top bool) (tftypes.Value, error) {
	if !v.IsKnown() {
		return f.placeholderBlock(b, at)
	}
	if v.IsNull() {
		return v, nil
	}
	m, err := objectFields(v, at)
	if err != nil {
		return v, err
	}
	out := make(map[string]tftypes.Value, len(b.attrNames)+len(b.blockNames))
	for _, name := range b.attrNames {
		a := b.Attributes[name]
		nv, err := f.attr(a, fieldOrNull(m, name, a.typ), at.attr(name), top)
		if err != nil {
			return v, err
		}
		out[name] = nv
	}
	for _, name := range b.blockNames {
		nb := b.BlockTypes[name]
		bv := fieldOrNull(m, name, nb.typ)
		var nv tftypes.Value
		if !bv.IsKnown() && nb.NestingMode != "single" && nb.NestingMode != "group" {
			nv, err = f.placeholderCollection(nb.NestingMode, nb.typ, at.attr(name), func(el loc) (tftypes.Value, error) {
				return f.placeholderBlock(nb.Block, el)
			})
		} else {
			nv, err = eachElement(nb.NestingMode, nb.typ, bv, at.attr(name), func(e tftypes.Value, el loc) (tftypes.Value, error) {
				return f.block(nb.Block, e, el, false)
			})
		}
		if err != nil {
			return v, err
		}
		out[name] = nv
	}
	nv, err := mk(b.typ, out)
	if err != nil {
		return v, at.errorf("%v", err)
	}
	return nv, nil
}

func (f *Filler) attr(a *Attribute, v tftypes.Value, at loc, top bool) (tftypes.Value, error) {
	if a.WriteOnly {
		return nullOf(a.typ), nil
	}
	if !v.IsKnown() || (f.FillComputedNulls && v.IsNull() && a.Computed) {
		if top {
			if fx, ok := f.Fixtures[at.name]; ok {
				return fx, nil
			}
		}
		if a.NestedType != nil {
			return f.placeholderNested(a.NestedType, a.typ, at)
		}
		return f.placeholder(a.typ, at)
	}
	if v.IsNull() {
		return v, nil
	}
	if a.NestedType != nil {
		no := a.NestedType
		return eachElement(no.NestingMode, a.typ, v, at, func(e tftypes.Value, el loc) (tftypes.Value, error) {
			return f.nestedObject(no, e, el)
		})
	}
	return f.fillType(a.typ, v, at)
}

func (f *Filler) nestedObject(no *NestedObject, v tftypes.Value, at loc) (tftypes.Value, error) {
	if !v.IsKnown() {
		return f.placeholderNestedObject(no, at)
	}
	if v.IsNull() {
		return v, nil
	}
	m, err := objectFields(v, at)
	if err != nil {
		return v, err
	}
	out := make(map[string]tftypes.Value, len(no.attrNames))
	for _, name := range no.attrNames {
		a := no.Attributes[name]
		nv, err := f.attr(a, fieldOrNull(m, name, a.typ), at.attr(name), false)
		if err != nil {
			return v, err
		}
		out[name] = nv
	}
	nv, err := mk(no.objTyp, out)
	if err != nil {
		return v, at.errorf("%v", err)
	}
	return nv, nil
}

// fillType replaces unknown values inside a value of a plain (cty) type.
func (f *Filler) fillType(t tftypes.Type, v tftypes.Value, at loc) (tftypes.Value, error) {
	if !v.IsKnown() {
		return f.placeholder(t, at)
	}
	if v.IsNull() || v.IsFullyKnown() {
		return v, nil
	}
	if t.Is(tftypes.DynamicPseudoType) {
		t = v.Type()
	}
	switch tt := t.(type) {
	case tftypes.List, tftypes.Set:
		var et tftypes.Type
		if l, ok := tt.(tftypes.List); ok {
			et = l.ElementType
		} else {
			et = tt.(tftypes.Set).ElementType
		}
		var elems []tftypes.Value
		if err := v.As(&elems); err != nil {
			return v, at.errorf("%v", err)
		}
		out := make([]tftypes.Value, len(elems))
		for i, e := range elems {
			ne, err := f.fillType(et, e, at.index(i))
			if err != nil {
				return v, err
			}
			out[i] = ne
		}
		return mkAt(t, out, at)
	case tftypes.Tuple:
		var elems []tftypes.Value
		if err := v.As(&elems); err != nil {
			return v, at.errorf("%v", err)
		}
		out := make([]tftypes.Value, len(elems))
		for i, e := range elems {
			ne, err := f.fillType(tt.ElementTypes[i], e, at.index(i))
			if err != nil {
				return v, err
			}
			out[i] = ne
		}
		return mkAt(t, out, at)
	case tftypes.Map:
		var elems map[string]tftypes.Value
		if err := v.As(&elems); err != nil {
			return v, at.errorf("%v", err)
		}
		out := make(map[string]tftypes.Value, len(elems))
		for k, e := range elems {
			ne, err := f.fillType(tt.ElementType, e, at.key(k))
			if err != nil {
				return v, err
			}
			out[k] = ne
		}
		return mkAt(t, out, at)
	case tftypes.Object:
		var elems map[string]tftypes.Value
		if err := v.As(&elems); err != nil {
			return v, at.errorf("%v", err)
		}
		out := make(map[string]tftypes.Value, len(elems))
		for k, e := range elems {
			ne, err := f.fillType(tt.AttributeTypes[k], e, at.attr(k))
			if err != nil {
				return v, err
			}
			out[k] = ne
		}
		return mkAt(t, out, at)
	}
	return v, nil
}

func mkAt(t tftypes.Type, val any, at loc) (tftypes.Value, error) {
	nv, err := mk(t, val)
	if err != nil {
		return nv, at.errorf("%v", err)
	}
	return nv, nil
}

// placeholder is a known value of type t: strings per placeholderString, numbers 1, bools false,
// lists and sets one element, maps empty, objects and tuples element by element, dynamic a string.
func (f *Filler) placeholder(t tftypes.Type, at loc) (tftypes.Value, error) {
	switch tt := t.(type) {
	case tftypes.List:
		e, err := f.placeholder(tt.ElementType, at.index(0))
		if err != nil {
			return e, err
		}
		return mkAt(t, []tftypes.Value{e}, at)
	case tftypes.Set:
		e, err := f.placeholder(tt.ElementType, at.index(0))
		if err != nil {
			return e, err
		}
		return mkAt(t, []tftypes.Value{e}, at)
	case tftypes.Map:
		return mkAt(t, map[string]tftypes.Value{}, at)
	case tftypes.Object:
		m := make(map[string]tftypes.Value, len(tt.AttributeTypes))
		for _, k := range sortedKeys(tt.AttributeTypes) {
			e, err := f.placeholder(tt.AttributeTypes[k], at.attr(k))
			if err != nil {
				return e, err
			}
			m[k] = e
		}
		return mkAt(t, m, at)
	case tftypes.Tuple:
		elems := make([]tftypes.Value, len(tt.ElementTypes))
		for i, et := range tt.ElementTypes {
			e, err := f.placeholder(et, at.index(i))
			if err != nil {
				return e, err
			}
			elems[i] = e
		}
		return mkAt(t, elems, at)
	}
	switch {
	case t.Is(tftypes.String), t.Is(tftypes.DynamicPseudoType):
		return tftypes.NewValue(tftypes.String, placeholderString(f.TypeName, at, f.Seed)), nil
	case t.Is(tftypes.Number):
		return tftypes.NewValue(tftypes.Number, big.NewFloat(1)), nil
	case t.Is(tftypes.Bool):
		return tftypes.NewValue(tftypes.Bool, false), nil
	}
	return tftypes.Value{}, at.errorf("no placeholder for type %s", t)
}

// placeholderCollection builds the placeholder of a nested block or nested attribute collection:
// one element for list and set, an empty map for map, the object itself for single and group.
func (f *Filler) placeholderCollection(mode string, t tftypes.Type, at loc, elem func(loc) (tftypes.Value, error)) (tftypes.Value, error) {
	switch mode {
	case "single", "group":
		return elem(at)
	case "list", "set":
		e, err := elem(at.index(0))
		if err != nil {
			return e, err
		}
		return mkAt(t, []tftypes.Value{e}, at)
	case "map":
		return mkAt(t, map[string]tftypes.Value{}, at)
	}
	return tftypes.Value{}, at.errorf("unknown nesting mode %q", mode)
}

func (f *Filler) placeholderNested(no *NestedObject, t tftypes.Type, at loc) (tftypes.Value, error) {
	return f.placeholderCollection(no.NestingMode, t, at, func(el loc) (tftypes.Value, error) {
		return f.placeholderNestedObject(no, el)
	})
}

func (f *Filler) placeholderNestedObject(no *NestedObject, at loc) (tftypes.Value, error) {
	m := make(map[string]tftypes.Value, len(no.attrNames))
	for _, name := range no.attrNames {
		e, err := f.placeholderAttr(no.Attributes[name], at.attr(name))
		if err != nil {
			return e, err
		}
		m[name] = e
	}
	return mkAt(no.objTyp, m, at)
}

func (f *Filler) placeholderAttr(a *Attribute, at loc) (tftypes.Value, error) {
	switch {
	case a.WriteOnly:
		return nullOf(a.typ), nil
	case a.NestedType != nil:
		return f.placeholderNested(a.NestedType, a.typ, at)
	}
	return f.placeholder(a.typ, at)
}

func (f *Filler) placeholderBlock(b *Block, at loc) (tftypes.Value, error) {
	m := make(map[string]tftypes.Value, len(b.attrNames)+len(b.blockNames))
	for _, name := range b.attrNames {
		e, err := f.placeholderAttr(b.Attributes[name], at.attr(name))
		if err != nil {
			return e, err
		}
		m[name] = e
	}
	for _, name := range b.blockNames {
		nb := b.BlockTypes[name]
		e, err := f.placeholderCollection(nb.NestingMode, nb.typ, at.attr(name), func(el loc) (tftypes.Value, error) {
			return f.placeholderBlock(nb.Block, el)
		})
		if err != nil {
			return e, err
		}
		m[name] = e
	}
	return mkAt(b.typ, m, at)
}
