package ops

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kitd-dev/kitd/jobs"
)

func TestRanges(t *testing.T) {
	for _, c := range []struct {
		in   []uint64
		want string
	}{
		{nil, ""},
		{[]uint64{7}, "7"},
		{[]uint64{1, 2, 3, 5, 8, 9}, "1-3,5,8-9"},
	} {
		if got := ranges(c.in); got != c.want {
			t.Errorf("ranges(%v) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := missing(1, 10, []uint64{3, 4, 5}, []uint64{9}); got != "1-2,6-8,10" {
		t.Errorf("missing: %q", got)
	}
}

func exec(doc string, resumed bool, details map[string]string, progress func(map[string]string) error) *jobs.Execution {
	return &jobs.Execution{JobID: "j", Document: json.RawMessage(doc), Resumed: resumed, StatusDetails: details,
		Progress: func(_ context.Context, d map[string]string) error { return progress(d) }}
}

// The restart records its phase before asking for the stop, asks for
// nothing if that fails, and finishes when resumed with the phase.
func TestRestart(t *testing.T) {
	var asked []string
	var reported []map[string]string
	op := Restart{Request: func(r string) { asked = append(asked, r) }}
	res := op.Run(context.Background(), exec(`{"operation":"kitd.restart"}`, false, nil, func(d map[string]string) error {
		if len(asked) > 0 {
			t.Error("restart asked for before the phase was recorded")
		}
		reported = append(reported, d)
		return nil
	}))
	if res.Status != "" || len(asked) != 1 || reported[0]["phase"] != "restarting" {
		t.Fatalf("first run: %+v asked %v reported %v", res, asked, reported)
	}
	res = op.Run(context.Background(), exec(`{"operation":"kitd.restart"}`, true, reported[0], nil))
	if res.Status != jobs.Succeeded || res.Details["restarted"] != "true" || len(asked) != 1 {
		t.Fatalf("resumed: %+v", res)
	}
	res = op.Run(context.Background(), exec(`{"operation":"kitd.restart"}`, false, nil, func(map[string]string) error { return errors.New("offline") }))
	if res.Status != jobs.Failed || len(asked) != 1 || !strings.Contains(res.Details["reason"], "not made") {
		t.Fatalf("unrecorded: %+v asked %v", res, asked)
	}
	if res = op.Run(context.Background(), exec(`{"operation":"kitd.restart","now":true}`, false, nil, nil)); res.Status != jobs.Rejected {
		t.Fatalf("unknown field: %+v", res)
	}
}

func TestSetConfigPaths(t *testing.T) {
	var got map[string]any
	op := SetConfig{Apply: func(d map[string]any) map[string]string {
		got = d
		if _, bad := d["buffer"]; bad {
			return map[string]string{"buffer": "unknown key", "sensors.a.interval": "must be at least 100ms"}
		}
		return nil
	}}
	res := op.Run(context.Background(), exec(`{"operation":"kitd.set-config","desired":{"sensors":{"a":{"interval":"5s","enabled":true}}}}`, false, nil, nil))
	if res.Status != jobs.Succeeded || res.Details["applied"] != "sensors.a.enabled,sensors.a.interval" || got == nil {
		t.Fatalf("%+v", res)
	}
	res = op.Run(context.Background(), exec(`{"operation":"kitd.set-config","desired":{"buffer":{"dir":"/"}}}`, false, nil, nil))
	if res.Status != jobs.Failed || res.Details["sensors:a:interval"] != "must be at least 100ms" || res.Details["buffer"] != "unknown key" {
		t.Fatalf("%+v", res)
	}
	for _, doc := range []string{`{"operation":"kitd.set-config"}`, `{"operation":"kitd.set-config","desired":[1]}`, `{"operation":"kitd.set-config","desired":{}}`} {
		if res := op.Run(context.Background(), exec(doc, false, nil, nil)); res.Status != jobs.Rejected {
			t.Errorf("%s: %+v", doc, res)
		}
	}
}
