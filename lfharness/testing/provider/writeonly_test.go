package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

func sum(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func TestWriteOnlyRecord(t *testing.T) {
	block := &Block{Attributes: map[string]*Attribute{
		"data":     {Optional: true},
		"data_wo":  {Optional: true, WriteOnly: true, Sensitive: true},
		"token_wo": {Optional: true, WriteOnly: true},
	}}
	objType := tftypes.Object{AttributeTypes: map[string]tftypes.Type{
		"data":     tftypes.Map{ElementType: tftypes.String},
		"data_wo":  tftypes.Map{ElementType: tftypes.String},
		"token_wo": tftypes.String,
	}}
	strMap := func(m map[string]*string) tftypes.Value {
		elems := map[string]tftypes.Value{}
		for k, v := range m {
			if v == nil {
				elems[k] = tftypes.NewValue(tftypes.String, nil)
			} else {
				elems[k] = tftypes.NewValue(tftypes.String, *v)
			}
		}
		return tftypes.NewValue(tftypes.Map{ElementType: tftypes.String}, elems)
	}
	secret, other := "s3cr3t-value", "plain"
	tests := []struct {
		name    string
		config  tftypes.Value
		want    []writeOnlyRecord
		notSeen []string
	}{
		{
			name: "map elements digested, nulls named, ordinary attributes ignored",
			config: tftypes.NewValue(objType, map[string]tftypes.Value{
				"data":     strMap(map[string]*string{"x": &other}),
				"data_wo":  strMap(map[string]*string{"salt": &secret, "gone": nil}),
				"token_wo": tftypes.NewValue(tftypes.String, nil),
			}),
			want:    []writeOnlyRecord{{Type: "t", Attribute: "data_wo", SHA256: map[string]string{"salt": sum(secret)}, Null: []string{"gone"}}},
			notSeen: []string{secret, other},
		},
		{
			name: "a single value under the empty key",
			config: tftypes.NewValue(objType, map[string]tftypes.Value{
				"data":     tftypes.NewValue(tftypes.Map{ElementType: tftypes.String}, nil),
				"data_wo":  tftypes.NewValue(tftypes.Map{ElementType: tftypes.String}, nil),
				"token_wo": tftypes.NewValue(tftypes.String, secret),
			}),
			want:    []writeOnlyRecord{{Type: "t", Attribute: "token_wo", SHA256: map[string]string{"": sum(secret)}}},
			notSeen: []string{secret},
		},
		{
			name:   "null configuration: nothing",
			config: tftypes.NewValue(objType, nil),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := WriteOnlyRecord(&out, "t", block, tc.config); err != nil {
				t.Fatalf("WriteOnlyRecord: %v", err)
			}
			var got []writeOnlyRecord
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if line == "" {
					continue
				}
				if !strings.HasPrefix(line, WriteOnlyPrefix) {
					t.Fatalf("line without prefix: %q", line)
				}
				var rec writeOnlyRecord
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, WriteOnlyPrefix)), &rec); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				got = append(got, rec)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tc.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("records:\n got  %s\n want %s", gotJSON, wantJSON)
			}
			for _, s := range tc.notSeen {
				if strings.Contains(out.String(), s) {
					t.Errorf("the record holds the value %q itself", s)
				}
			}
		})
	}
}
