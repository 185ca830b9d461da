package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

func TestBehavioursRejectWhatCouldNeverApply(t *testing.T) {
	for _, tc := range []struct {
		name, section, want string
	}{
		{"unknown key", `{"rules": [], "jornal": "x"}`, `unknown field "jornal"`},
		{"unknown rule key", `{"rules": [{"type": "test_thing", "operation": "delete", "delay": 1}]}`, `unknown field "delay"`},
		{"no type", `{"rules": [{"operation": "delete"}]}`, "rules[0]: no type"},
		{"bad operation", `{"rules": [{"type": "test_thing", "operation": "destroy"}]}`, `operation "destroy", want create, update or delete`},
		{"negative times", `{"rules": [{"type": "test_thing", "operation": "create", "times": -1}]}`, "must not be negative"},
		{"fail without code", `{"rules": [{"type": "test_thing", "operation": "create", "fail": {"message": "x"}}]}`, "fail needs a code"},
		{"ignore_cancel without delay", `{"rules": [{"type": "test_thing", "operation": "create", "ignore_cancel": true}]}`, "nothing to ignore"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testProvider(t, `{"behaviours": `+tc.section+`}`)
			_, err := p.loadFixtures()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p.FixturesPath) {
				t.Fatalf("error %v, want one naming %s and %q", err, p.FixturesPath, tc.want)
			}
		})
	}
}

// subject is test_thing as the behaviour tests create, update and delete it.
type subject struct {
	t       *testing.T
	p       *Provider
	typ     tftypes.Type
	config  tftypes.Value
	planned *tfprotov6.DynamicValue
	state   *tfprotov6.DynamicValue // after a successful create
}

func newSubject(t *testing.T, p *Provider, config string) *subject {
	t.Helper()
	typ := mustGet(t, p.Schema.ResourceSchemas, "test_thing").Block.ValueType()
	cfg := jsonValue(t, typ, config)
	plan, _ := p.PlanResourceChange(context.Background(), &tfprotov6.PlanResourceChangeRequest{
		TypeName: "test_thing", PriorState: mustDyn(t, typ, nullOf(typ)), ProposedNewState: mustDyn(t, typ, cfg), Config: mustDyn(t, typ, cfg),
	})
	noDiags(t, plan.Diagnostics)
	th := &subject{t: t, p: p, typ: typ, config: cfg, planned: plan.PlannedState}
	// The created object as a plain provider makes it: what a delete starts from.
	plain := &Provider{Name: "test", Schema: p.Schema}
	created, _ := plain.ApplyResourceChange(context.Background(), th.request(OpCreate))
	noDiags(t, created.Diagnostics)
	th.state = created.NewState
	return th
}

func (th *subject) request(op string) *tfprotov6.ApplyResourceChangeRequest {
	null := mustDyn(th.t, th.typ, nullOf(th.typ))
	switch op {
	case OpCreate:
		return &tfprotov6.ApplyResourceChangeRequest{TypeName: "test_thing", PriorState: null, PlannedState: th.planned,
			Config: mustDyn(th.t, th.typ, th.config), PlannedPrivate: []byte("p")}
	case OpUpdate:
		return &tfprotov6.ApplyResourceChangeRequest{TypeName: "test_thing", PriorState: th.state, PlannedState: th.state,
			Config: mustDyn(th.t, th.typ, th.config), PlannedPrivate: []byte("p")}
	}
	return &tfprotov6.ApplyResourceChangeRequest{TypeName: "test_thing", PriorState: th.state, PlannedState: null,
		Config: null, PlannedPrivate: []byte("p")}
}

// outcome is what one ApplyResourceChange answered: "created" (a new object), "kept" (the prior
// object), "null", plus the diagnostics' text.
func (th *subject) apply(ctx context.Context, op string) (string, string, time.Duration) {
	started := time.Now()
	resp, err := th.p.ApplyResourceChange(ctx, th.request(op))
	if err != nil {
		th.t.Fatal(err)
	}
	took := time.Since(started)
	if resp.NewState == nil {
		return "no state", diagText(resp.Diagnostics), took
	}
	v := mustUndyn(th.t, th.typ, resp.NewState)
	prior := mustUndyn(th.t, th.typ, th.state)
	switch {
	case v.IsNull():
		return "null", diagText(resp.Diagnostics), took
	case op != OpCreate && v.Equal(prior):
		return "kept", diagText(resp.Diagnostics), took
	case v.IsFullyKnown():
		return "created", diagText(resp.Diagnostics), took
	}
	return "unknown left: " + describe(v), diagText(resp.Diagnostics), took
}

func readJournal(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e JournalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		events = append(events, e.Operation+" "+e.Event)
	}
	return events
}

// TestBehavioursShapeWhatTerraformGetsBack drives ApplyResourceChange through each behaviour: what
// it returns (the state terraform-plugin-go's contract asks for), its diagnostics, its timing, and
// the journal's events. Cancellation is a cancelled RPC context, what tf6server makes of
// StopProvider for every call in flight.
func TestBehavioursShapeWhatTerraformGetsBack(t *testing.T) {
	type call struct {
		op         string
		cancelAt   time.Duration // 0: never cancelled
		want       string        // created, kept, null
		diag       string        // "" for none
		minTook    time.Duration
		maxTook    time.Duration // 0: no bound
		removeFile bool          // remove while_file before this call
	}
	for _, tc := range []struct {
		name    string
		rules   string // JSON array; WHILE is replaced by a file that exists at the start
		calls   []call
		journal []string // nil: not checked
	}{
		{name: "no rule: every operation succeeds at once", rules: `[]`,
			calls:   []call{{op: OpCreate, want: "created"}, {op: OpUpdate, want: "kept"}, {op: OpDelete, want: "null"}},
			journal: []string{}},
		{name: "a failed delete keeps the object, times 1 then succeeds",
			rules: `[{"type": "test_thing", "operation": "delete", "times": 1,
				"fail": {"code": "DependencyViolation", "message": "resource {id} has a dependent object"}}]`,
			calls: []call{
				{op: OpDelete, want: "kept", diag: "deleting test_thing (thing-"},
				{op: OpDelete, want: "null"}},
			journal: []string{"delete started", "delete failed"}},
		{name: "the failure names the AWS code and the id",
			rules: `[{"type": "test_thing", "operation": "delete", "fail": {"code": "DependencyViolation", "message": "resource {id} has a dependent object"}}]`,
			calls: []call{{op: OpDelete, want: "kept", diag: "api error DependencyViolation: resource thing-"}}},
		{name: "a failed create leaves nothing",
			rules:   `[{"type": "test_thing", "operation": "create", "fail": {"code": "UnauthorizedOperation", "message": "no"}}]`,
			calls:   []call{{op: OpCreate, want: "null", diag: "creating test_thing"}},
			journal: []string{"create started", "create failed"}},
		{name: "a failed update keeps the prior object",
			rules: `[{"type": "test_thing", "operation": "update", "fail": {"code": "InvalidParameterValue", "message": "no"}}]`,
			calls: []call{{op: OpUpdate, want: "kept", diag: "updating test_thing"}}},
		{name: "a rule for another operation or another value does not apply",
			rules: `[{"type": "test_thing", "operation": "create", "fail": {"code": "X", "message": "y"}},
				{"type": "test_thing", "operation": "delete", "match": {"name": "other"}, "fail": {"code": "X", "message": "y"}},
				{"type": "test_other", "operation": "delete", "fail": {"code": "X", "message": "y"}}]`,
			calls:   []call{{op: OpDelete, want: "null"}},
			journal: []string{}},
		{name: "a match on a map key, a number and a list element's attribute",
			rules: `[{"type": "test_thing", "operation": "delete", "match": {"tags.k": "v", "secret_wo_version": "1", "ports.1.node_port": "30443"},
				"fail": {"code": "X", "message": "y"}}]`,
			calls: []call{{op: OpDelete, want: "kept", diag: "api error X"}}},
		{name: "while_file: fails while the file exists, succeeds once it is gone",
			rules: `[{"type": "test_thing", "operation": "delete", "while_file": WHILE, "fail": {"code": "DependencyViolation", "message": "m"}}]`,
			calls: []call{
				{op: OpDelete, want: "kept", diag: "DependencyViolation"},
				{op: OpDelete, want: "kept", diag: "DependencyViolation"},
				{op: OpDelete, want: "null", removeFile: true}},
			journal: []string{"delete started", "delete failed", "delete started", "delete failed"}},
		{name: "a delay makes the call slow, then it succeeds",
			rules:   `[{"type": "test_thing", "operation": "create", "delay_seconds": 0.3}]`,
			calls:   []call{{op: OpCreate, want: "created", minTook: 300 * time.Millisecond}},
			journal: []string{"create started", "create done"}},
		{name: "a create interrupted during its delay returns the new object with an error (tainted)",
			rules: `[{"type": "test_thing", "operation": "create", "delay_seconds": 30}]`,
			calls: []call{{op: OpCreate, cancelAt: 200 * time.Millisecond, want: "created", diag: "creating test_thing (",
				maxTook: 5 * time.Second}},
			journal: []string{"create started", "create interrupted"}},
		{name: "a delete interrupted during its delay keeps the object",
			rules: `[{"type": "test_thing", "operation": "delete", "delay_seconds": 30}]`,
			calls: []call{{op: OpDelete, cancelAt: 200 * time.Millisecond, want: "kept", diag: "interrupted",
				maxTook: 5 * time.Second}},
			journal: []string{"delete started", "delete interrupted"}},
		{name: "ignore_cancel: the delay runs to its end after the cancel, then the delete succeeds",
			rules:   `[{"type": "test_thing", "operation": "delete", "delay_seconds": 0.6, "ignore_cancel": true}]`,
			calls:   []call{{op: OpDelete, cancelAt: 100 * time.Millisecond, want: "null", minTook: 600 * time.Millisecond}},
			journal: []string{"delete started", "delete cancel_ignored", "delete done"}},
		{name: "a delay then a failure",
			rules: `[{"type": "test_thing", "operation": "delete", "delay_seconds": 0.2, "fail": {"code": "X", "message": "y"}}]`,
			calls: []call{{op: OpDelete, want: "kept", diag: "api error X", minTook: 200 * time.Millisecond}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			journal, while := filepath.Join(dir, "journal.jsonl"), filepath.Join(dir, "held")
			if err := os.WriteFile(while, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			quoted, _ := json.Marshal(while)
			rules := strings.ReplaceAll(tc.rules, "WHILE", string(quoted))
			p := testProvider(t, `{"behaviours": {"journal": "`+journal+`", "rules": `+rules+`}}`)
			th := newSubject(t, p, thingConfig)
			for i, c := range tc.calls {
				if c.removeFile {
					if err := os.Remove(while); err != nil {
						t.Fatal(err)
					}
				}
				ctx, cancel := context.WithCancel(context.Background())
				if c.cancelAt > 0 {
					time.AfterFunc(c.cancelAt, cancel)
				}
				got, diags, took := th.apply(ctx, c.op)
				cancel()
				if got != c.want {
					t.Errorf("call %d (%s): %s, want %s (diagnostics %q)", i, c.op, got, c.want, diags)
				}
				if (c.diag == "") != (diags == "") || !strings.Contains(diags, c.diag) {
					t.Errorf("call %d (%s): diagnostics %q, want %q", i, c.op, diags, c.diag)
				}
				if took < c.minTook || (c.maxTook > 0 && took > c.maxTook) {
					t.Errorf("call %d (%s) took %s, want between %s and %s", i, c.op, took, c.minTook, c.maxTook)
				}
			}
			if got := readJournal(t, journal); tc.journal != nil && strings.Join(got, ", ") != strings.Join(tc.journal, ", ") {
				t.Errorf("journal %v, want %v", got, tc.journal)
			}
		})
	}
}

func TestABehaviourMatchingAnAttributeTheTypeHasNotIsAnErrorSayingWhere(t *testing.T) {
	p := testProvider(t, `{"behaviours": {"rules": [{"type": "test_thing", "operation": "delete", "match": {"nmae": "a"},
		"fail": {"code": "X", "message": "y"}}]}}`)
	th := newSubject(t, p, thingConfig)
	_, diags, _ := th.apply(context.Background(), OpDelete)
	for _, want := range []string{p.FixturesPath, "behaviours.rules[0].match", `test_thing has no attribute "nmae"`} {
		if !strings.Contains(diags, want) {
			t.Errorf("diagnostics %q do not say %q", diags, want)
		}
	}
}

// A stand-in serving a whole session counts a rule's times across rewrites of the file that keep it,
// and starts again for a rule that changed.
func TestTimesCountAcrossReloadsOfAnUnchangedRule(t *testing.T) {
	rule := `{"type": "test_thing", "operation": "delete", "times": 1, "fail": {"code": "X", "message": "y"}}`
	p := testProvider(t, `{"behaviours": {"rules": [`+rule+`]}}`)
	th := newSubject(t, p, thingConfig)
	steps := []struct {
		rewrite, want string
	}{
		{"", "kept"},
		{`{"data_sources": {}, "behaviours": {"rules": [` + rule + `]}}`, "null"},
		{`{"behaviours": {"rules": [` + strings.Replace(rule, `"y"`, `"z"`, 1) + `]}}`, "kept"},
	}
	for i, s := range steps {
		if s.rewrite != "" {
			if err := os.WriteFile(p.FixturesPath, []byte(s.rewrite), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, diags, _ := th.apply(context.Background(), OpDelete); got != s.want {
			t.Errorf("step %d: %s (%q), want %s", i, got, diags, s.want)
		}
	}
}
