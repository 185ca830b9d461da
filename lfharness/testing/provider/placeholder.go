package main

// Placeholders: the deterministic values the stand-in gives to what only a real provider could know.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// PlaceholderAccountID and PlaceholderRegion appear in ARNs and in attributes named like them.
const (
	PlaceholderAccountID = "123456789012"
	PlaceholderRegion    = "us-east-1"
)

// shortHash is 8 hex digits of a hash of the resource type, the attribute path and the seed
// (the canonical form of the configuration).
func shortHash(typeName, path, seed string) string {
	h := sha256.New()
	h.Write([]byte(typeName))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write([]byte(seed))
	return hex.EncodeToString(h.Sum(nil))[:8]
}

// dashed turns aws_eks_cluster into aws-eks-cluster.
func dashed(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "-")) }

// typeParts splits aws_eks_cluster into provider "aws", service "eks" and kind "cluster"
// (aws_vpc: "aws", "vpc", "vpc").
func typeParts(typeName string) (prov, svc, kind string) {
	parts := strings.Split(typeName, "_")
	prov = parts[0]
	if len(parts) < 2 {
		return prov, prov, prov
	}
	svc = parts[1]
	if len(parts) < 3 {
		return prov, svc, svc
	}
	return prov, svc, strings.Join(parts[2:], "-")
}

// shortType is the type without its provider prefix, dashed: aws_eks_cluster -> eks-cluster.
func shortType(typeName string) string {
	if i := strings.IndexByte(typeName, '_'); i >= 0 {
		return dashed(typeName[i+1:])
	}
	return dashed(typeName)
}

// placeholderString is the string placeholder for the attribute at `at` of a `typeName` object.
// The rules go by the innermost attribute name (see README.md, "Placeholders").
func placeholderString(typeName string, at loc, seed string) string {
	h := shortHash(typeName, at.path, seed)
	name := strings.ToLower(at.name)
	_, svc, kind := typeParts(typeName)
	switch {
	case name == "id":
		return shortType(typeName) + "-" + h
	case strings.HasSuffix(name, "arn") || strings.HasSuffix(name, "arns"):
		return "arn:aws:" + svc + ":" + PlaceholderRegion + ":" + PlaceholderAccountID + ":" + kind + "/" + h
	case name == "account_id" || strings.HasSuffix(name, "_account_id") || name == "owner_id":
		return PlaceholderAccountID
	case name == "region":
		return PlaceholderRegion
	case strings.HasSuffix(name, "endpoint") || strings.HasSuffix(name, "url") || strings.HasSuffix(name, "issuer"):
		return "https://" + shortType(typeName) + "-" + h + ".standin.invalid"
	case name == "json" || strings.HasSuffix(name, "_json"):
		return `{"standin":"` + dashed(typeName) + "-" + dashed(at.name) + "-" + h + `"}`
	case strings.Contains(name, "base64") || (name == "data" && strings.Contains(strings.ToLower(at.path), "certificate")):
		pem := "-----BEGIN CERTIFICATE-----\nstandin-" + dashed(typeName) + "-" + h + "\n-----END CERTIFICATE-----\n"
		return base64.StdEncoding.EncodeToString([]byte(pem))
	case strings.HasSuffix(name, "cidr_block") || strings.HasSuffix(name, "cidr") || strings.HasSuffix(name, "cidr_blocks"):
		if strings.Contains(name, "ipv6") {
			return "fd00::/56"
		}
		return "10.0.0.0/16"
	}
	return "standin-" + dashed(typeName) + "-" + dashed(at.name) + "-" + h
}

// Seed is the canonical form of a configuration without its write-only attributes (ephemeral
// values such as passwords must not change the placeholders of what is stored).
func Seed(b *Block, config tftypes.Value) (string, error) {
	v, err := PlanUpdate(b, config)
	if err != nil {
		return "", err
	}
	return Canonical(v), nil
}

// Canonical is a deterministic text form of a value (object and map keys sorted), used as the
// seed of placeholders so that the same configuration gives the same placeholders.
func Canonical(v tftypes.Value) string {
	var sb strings.Builder
	writeCanonical(&sb, v)
	return sb.String()
}

func writeCanonical(sb *strings.Builder, v tftypes.Value) {
	if v.Type() == nil {
		sb.WriteString("~")
		return
	}
	if !v.IsKnown() {
		sb.WriteString("?")
		return
	}
	if v.IsNull() {
		sb.WriteString("~")
		return
	}
	t := v.Type()
	switch {
	case t.Is(tftypes.String):
		var s string
		_ = v.As(&s)
		sb.WriteString(strconv.Quote(s))
	case t.Is(tftypes.Number):
		n := new(big.Float)
		_ = v.As(&n)
		sb.WriteString(n.Text('g', -1))
	case t.Is(tftypes.Bool):
		var b bool
		_ = v.As(&b)
		sb.WriteString(strconv.FormatBool(b))
	case t.Is(tftypes.List{}), t.Is(tftypes.Set{}), t.Is(tftypes.Tuple{}):
		var elems []tftypes.Value
		_ = v.As(&elems)
		sb.WriteString("[")
		for i, e := range elems {
			if i > 0 {
				sb.WriteString(",")
			}
			writeCanonical(sb, e)
		}
		sb.WriteString("]")
	case t.Is(tftypes.Map{}), t.Is(tftypes.Object{}):
		var m map[string]tftypes.Value
		_ = v.As(&m)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sb.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString(strconv.Quote(k))
			sb.WriteString(":")
			writeCanonical(sb, m[k])
		}
		sb.WriteString("}")
	default:
		sb.WriteString(v.String())
	}
}
