package main

// Behaviours: what a test makes a resource's apply do besides succeed at once (the "behaviours"
// section of the fixtures file): take time, fail with an AWS-style error, ignore cancellation.
//
//	{"behaviours": {
//	   "journal": "/tmp/run/journal.jsonl",
//	   "rules": [{"type": "aws_security_group", "operation": "delete",
//	              "match": {"id": "sg-1", "tags.Name": "x"}, "while_file": "/tmp/run/held", "times": 1,
//	              "delay_seconds": 5, "ignore_cancel": false,
//	              "fail": {"code": "DependencyViolation", "message": "resource {id} has a dependent object"}}]}}
//
// A call (ApplyResourceChange) takes the first rule whose type and operation it has, whose match
// holds on its state (planned for create and update, prior for delete), whose while_file exists and
// whose times are not used up. Calls no rule takes are answered at once, as without the section.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// SectionBehaviours is the fixtures file's key for Behaviours.
const SectionBehaviours = "behaviours"

// Operations a rule applies to: what ApplyResourceChange is asked to do.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Behaviours is the "behaviours" section of a fixtures file.
type Behaviours struct {
	// Journal, when set, is a file the stand-in appends one JSON line to for each event of a call a
	// rule took (JournalEntry): the test reads what Terraform really asked and when.
	Journal string `json:"journal"`
	Rules   []Rule `json:"rules"`
}

// Rule is one behaviour; see the file comment.
type Rule struct {
	Type      string `json:"type"`
	Operation string `json:"operation"`
	// Match: attribute path (dots between attribute names, map keys and list indexes) -> the value
	// as a string (numbers and bools in their JSON spelling); all must hold.
	Match map[string]string `json:"match"`
	// WhileFile: the rule holds only while this file exists (a condition the test controls, e.g.
	// "while moto still holds the interfaces": the test removes the file when it no longer does).
	WhileFile string `json:"while_file"`
	// Times: the rule takes only the first N calls that match it (0: every one).
	Times int `json:"times"`
	// DelaySeconds: the call sleeps this long before it answers. The sleep ends early, with the
	// error "interrupted", when Terraform stops the provider (StopProvider, sent on its first
	// interrupt) or cancels the call, as a real provider's waiters do, unless IgnoreCancel.
	DelaySeconds float64 `json:"delay_seconds"`
	// IgnoreCancel: the sleep runs to its end whatever Terraform does (terraform-provider-helm runs
	// Helm's install and uninstall with context.Background(), so they outlive Terraform's interrupt).
	IgnoreCancel bool `json:"ignore_cancel"`
	// Fail: after the delay, the call fails with this AWS-style error instead of doing its work.
	Fail *Failure `json:"fail"`

	// key tells this rule's use count apart across reloads of the file: index and content.
	key string
}

// Failure is an AWS API error as the aws provider reports it.
type Failure struct {
	Code string `json:"code"`
	// Message: "{id}" is replaced by the resource's id.
	Message string `json:"message"`
}

// JournalEntry is one line of the journal.
type JournalEntry struct {
	Provider  string `json:"provider"`
	Type      string `json:"type"`
	Operation string `json:"operation"`
	ID        string `json:"id"`
	Rule      int    `json:"rule"`
	// Event: started (the rule took the call), cancel_ignored (Terraform stopped the provider or
	// cancelled the call during an ignore_cancel delay), interrupted, failed, done.
	Event string  `json:"event"`
	At    float64 `json:"at"` // Unix time, seconds
}

// parseBehaviours decodes and checks the section; unknown keys are errors (a typo would otherwise
// make a rule that never applies).
func parseBehaviours(path string, raw json.RawMessage) (*Behaviours, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b Behaviours
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("fixtures file %s: %s: %w (keys: journal, rules; a rule's: type, operation, match, "+
			"while_file, times, delay_seconds, ignore_cancel, fail)", path, SectionBehaviours, err)
	}
	for i := range b.Rules {
		r := &b.Rules[i]
		where := fmt.Sprintf("fixtures file %s: %s.rules[%d]", path, SectionBehaviours, i)
		switch {
		case r.Type == "":
			return nil, fmt.Errorf("%s: no type (a resource type such as aws_security_group)", where)
		case r.Operation != OpCreate && r.Operation != OpUpdate && r.Operation != OpDelete:
			return nil, fmt.Errorf("%s: operation %q, want %s, %s or %s", where, r.Operation, OpCreate, OpUpdate, OpDelete)
		case r.Times < 0 || r.DelaySeconds < 0:
			return nil, fmt.Errorf("%s: times and delay_seconds must not be negative", where)
		case r.Fail != nil && r.Fail.Code == "":
			return nil, fmt.Errorf("%s: fail needs a code (an AWS error code such as DependencyViolation)", where)
		case r.IgnoreCancel && r.DelaySeconds == 0:
			return nil, fmt.Errorf("%s: ignore_cancel without delay_seconds has nothing to ignore", where)
		}
		content, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		r.key = strconv.Itoa(i) + ":" + string(content)
	}
	return &b, nil
}

// behaviourState is what a Provider remembers of its rules between calls and file reloads.
type behaviourState struct {
	mu      sync.Mutex
	used    map[string]int // Rule.key -> calls taken
	journal sync.Mutex
}

// take returns the index of the rule that takes this call (and counts it), or -1. A match path the
// type does not have is an error: such a rule could never apply.
func (st *behaviourState) take(bs *Behaviours, path, typeName, op string, b *Block, state tftypes.Value) (int, error) {
	if bs == nil {
		return -1, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range bs.Rules {
		r := &bs.Rules[i]
		if r.Type != typeName || r.Operation != op {
			continue
		}
		ok, err := r.matches(b, state)
		if err != nil {
			return -1, fmt.Errorf("fixtures file %s: %s.rules[%d].match: %w", path, SectionBehaviours, i, err)
		}
		if !ok || (r.WhileFile != "" && !exists(r.WhileFile)) || (r.Times > 0 && st.used[r.key] >= r.Times) {
			continue
		}
		if st.used == nil {
			st.used = map[string]int{}
		}
		st.used[r.key]++
		return i, nil
	}
	return -1, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (r *Rule) matches(b *Block, state tftypes.Value) (bool, error) {
	for _, path := range sortedKeys(r.Match) {
		first := strings.SplitN(path, ".", 2)[0]
		if _, ok := b.Attributes[first]; !ok {
			return false, fmt.Errorf("%s has no attribute %q (path %q; its attributes: %s)", r.Type, first, path,
				strings.Join(b.attrNames, ", "))
		}
		got, ok := stringAt(state, strings.Split(path, "."))
		if !ok || got != r.Match[path] {
			return false, nil
		}
	}
	return true, nil
}

// stringAt is the primitive value at a path, as a string; false when the path leads nowhere known.
func stringAt(v tftypes.Value, path []string) (string, bool) {
	for _, step := range path {
		if !v.IsKnown() || v.IsNull() {
			return "", false
		}
		var fields map[string]tftypes.Value
		if v.As(&fields) == nil {
			next, ok := fields[step]
			if !ok {
				return "", false
			}
			v = next
			continue
		}
		var elems []tftypes.Value
		i, err := strconv.Atoi(step)
		if v.As(&elems) != nil || err != nil || i < 0 || i >= len(elems) {
			return "", false
		}
		v = elems[i]
	}
	if !v.IsKnown() || v.IsNull() {
		return "", false
	}
	switch {
	case v.Type().Is(tftypes.String):
		var s string
		if v.As(&s) != nil {
			return "", false
		}
		return s, true
	case v.Type().Is(tftypes.Number):
		f := new(big.Float)
		if v.As(&f) != nil {
			return "", false
		}
		return f.Text('g', -1), true
	case v.Type().Is(tftypes.Bool):
		var b bool
		if v.As(&b) != nil {
			return "", false
		}
		return strconv.FormatBool(b), true
	}
	return "", false
}

// resourceID is the state's top-level "id", for messages and the journal ("" when it has none).
func resourceID(state tftypes.Value) string {
	id, _ := stringAt(state, []string{"id"})
	return id
}

// note appends one entry to the journal (nothing without one).
func (p *Provider) note(bs *Behaviours, e JournalEntry) error {
	if bs == nil || bs.Journal == "" {
		return nil
	}
	e.Provider, e.At = p.Name, float64(time.Now().UnixNano())/1e9
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	p.behaviours.journal.Lock()
	defer p.behaviours.journal.Unlock()
	f, err := os.OpenFile(bs.Journal, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("behaviours journal: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("behaviours journal %s: %w", bs.Journal, err)
	}
	return f.Close()
}

// wait sleeps for d; it returns early with false when ctx ends, unless ignoreCancel (then onIgnored
// is called once when ctx ends during the sleep).
func wait(ctx context.Context, d time.Duration, ignoreCancel bool, onIgnored func()) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	done := ctx.Done()
	for {
		select {
		case <-timer.C:
			return true
		case <-done:
			if !ignoreCancel {
				return false
			}
			onIgnored()
			done = nil // a nil channel never fires: sleep on to the end
		}
	}
}

// verbs as the aws provider words its errors ("deleting EC2 Security Group (sg-1): ...").
var verbs = map[string]string{OpCreate: "creating", OpUpdate: "updating", OpDelete: "deleting"}

// behave runs the rule that takes this call, if any. `done` computes the call's normal result; it is
// called only when the rule lets the call succeed. Per terraform-plugin-go's contract: a failed or
// interrupted delete or update returns the prior state with the error (the object is still there);
// a failed create returns null (the API refused, nothing was made); an interrupted create returns
// the new object with the error (made but not waited for: Terraform keeps it, tainted), as the aws
// provider's creates that set the id before waiting do.
func (p *Provider) behave(ctx context.Context, typeName, op string, b *Block, prior, planned tftypes.Value,
	done func() (tftypes.Value, error)) (tftypes.Value, []*tfprotov6.Diagnostic, error) {
	fx, err := p.loadFixtures()
	if err != nil {
		return tftypes.Value{}, nil, err
	}
	var bs *Behaviours
	if fx != nil {
		bs = fx.Behaviours
	}
	matchOn := planned
	if op == OpDelete {
		matchOn = prior
	}
	i, err := p.behaviours.take(bs, p.FixturesPath, typeName, op, b, matchOn)
	if err != nil || i < 0 {
		if err != nil {
			return tftypes.Value{}, nil, err
		}
		v, err := done()
		return v, nil, err
	}
	r := bs.Rules[i]
	id := resourceID(matchOn)
	entry := func(event string) JournalEntry {
		return JournalEntry{Type: typeName, Operation: op, ID: id, Rule: i, Event: event}
	}
	if err := p.note(bs, entry("started")); err != nil {
		return tftypes.Value{}, nil, err
	}
	where := fmt.Sprintf("fixtures file %s, %s.rules[%d]", p.FixturesPath, SectionBehaviours, i)
	if r.DelaySeconds > 0 {
		d := time.Duration(r.DelaySeconds * float64(time.Second))
		started := time.Now()
		var noteErr error
		finished := wait(ctx, d, r.IgnoreCancel, func() { noteErr = p.note(bs, entry("cancel_ignored")) })
		if noteErr != nil {
			return tftypes.Value{}, nil, noteErr
		}
		if !finished {
			if err := p.note(bs, entry("interrupted")); err != nil {
				return tftypes.Value{}, nil, err
			}
			diags := errDiag(fmt.Sprintf("%s %s (%s): interrupted", verbs[op], typeName, id),
				fmt.Sprintf("Provider stand-in (%s): Terraform stopped the provider or cancelled the call after %.1fs of "+
					"its %gs delay (%s); the operation did not finish.", p.Name, time.Since(started).Seconds(), r.DelaySeconds, where))
			if op != OpCreate {
				return prior, diags, nil
			}
			v, err := done()
			return v, diags, err
		}
	}
	if r.Fail != nil {
		if err := p.note(bs, entry("failed")); err != nil {
			return tftypes.Value{}, nil, err
		}
		message := strings.ReplaceAll(r.Fail.Message, "{id}", id)
		diags := errDiag(fmt.Sprintf("%s %s (%s): api error %s: %s", verbs[op], typeName, id, r.Fail.Code, message),
			fmt.Sprintf("Provider stand-in (%s): failure set by the %s.", p.Name, where))
		if op == OpCreate {
			return nullOf(b.typ), diags, nil
		}
		return prior, diags, nil
	}
	v, err := done()
	if err != nil {
		return v, nil, err
	}
	return v, nil, p.note(bs, entry("done"))
}
