package ops

import (
	"context"
	"sort"
	"strings"

	"github.com/kitd-dev/kitd/jobs"
)

// SetConfig is kitd.set-config: {"desired": {...}} with exactly the keys,
// forms and all-or-nothing rule of the shadow's desired state
// (sensors.<name>.interval, sensors.<name>.enabled,
// mqtt.batch.max_readings). SUCCEEDED with "applied" (the paths set);
// FAILED with one statusDetails entry per refused path, its dots written
// as colons since AWS allows no dots in keys ("sensors:x:interval":
// "..."), and then nothing was changed. Applied settings are persisted
// (Persist: jobs.state_file) and applied again at every start and reload;
// a setting applied but not persisted (a write error) is SUCCEEDED with
// "not_persisted" saying why: it lasts until the next restart.
type SetConfig struct {
	// Apply applies a desired document all or nothing and returns the
	// errors by path (nil: applied).
	Apply func(desired map[string]any) map[string]string
	// Persist keeps an applied document; nil keeps nothing.
	Persist func(desired map[string]any) error
}

type setConfigParams struct {
	Desired map[string]any `json:"desired"`
}

// Run implements jobs.Operation.
func (op SetConfig) Run(_ context.Context, e *jobs.Execution) jobs.Result {
	var p setConfigParams
	if err := jobs.DecodeParams(e.Document, &p); err != nil {
		return reject(err.Error())
	}
	if len(p.Desired) == 0 {
		return reject(`"desired" must be a non-empty object of settings, e.g. {"sensors": {"soil-1": {"interval": "60s"}}}`)
	}
	if errs := op.Apply(p.Desired); len(errs) > 0 {
		d := make(map[string]string, len(errs)+1)
		for path, msg := range errs {
			// statusDetails keys take [a-zA-Z0-9:_-] only (AWS), so the
			// path's dots are written as colons.
			d[strings.ReplaceAll(path, ".", ":")] = msg
		}
		d["reason"] = "nothing applied: the document has errors"
		return jobs.Result{Status: jobs.Failed, Details: d}
	}
	d := map[string]string{"applied": strings.Join(paths("", p.Desired), ",")}
	if op.Persist != nil {
		if err := op.Persist(p.Desired); err != nil {
			d["not_persisted"] = err.Error()
		}
	}
	return jobs.Result{Status: jobs.Succeeded, Details: d}
}

// paths lists the leaf paths of a desired document, sorted.
func paths(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			out = append(out, paths(p, sub)...)
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
