package shadow

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
)

// decodeObject parses one JSON object, numbers kept as json.Number so a
// value is echoed exactly as it was given ("5.0" stays 5.0).
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// ownKeys are the top-level reported keys the agent writes. Keys others
// put in reported (a dashboard's notes) are never deleted by a report.
var ownKeys = map[string]bool{
	"connected": true, "agent": true, "sensors": true,
	"buffer": true, "mqtt": true, "errors": true, "alerts": true,
}

// diff is the merge patch that turns old into cur: changed leaves, and
// null for what cur no longer has. At the top level only ownKeys are
// removed.
func diff(old, cur map[string]any) map[string]any {
	return diffAt(old, cur, true)
}

func diffAt(old, cur map[string]any, top bool) map[string]any {
	out := map[string]any{}
	for k, nv := range cur {
		ov, had := old[k]
		nm, nIsMap := nv.(map[string]any)
		om, oIsMap := ov.(map[string]any)
		switch {
		case nIsMap && oIsMap:
			if d := diffAt(om, nm, false); len(d) > 0 {
				out[k] = d
			}
		case nIsMap && len(nm) == 0 && !had:
			// An empty object stores nothing: sending it would never
			// make old and cur equal.
		case !had || !reflect.DeepEqual(ov, nv):
			out[k] = nv
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok && (!top || ownKeys[k]) {
			out[k] = nil
		}
	}
	return out
}

// applyPatch merges patch into dst as the shadow service does: null
// deletes, objects merge, anything else replaces; emptied objects go.
func applyPatch(dst, patch map[string]any) {
	for k, v := range patch {
		if v == nil {
			delete(dst, k)
			continue
		}
		pm, pIsMap := v.(map[string]any)
		dm, dIsMap := dst[k].(map[string]any)
		switch {
		case pIsMap && dIsMap:
			applyPatch(dm, pm)
			if len(dm) == 0 {
				delete(dst, k)
			}
		case pIsMap:
			m := map[string]any{}
			applyPatch(m, pm)
			if len(m) > 0 {
				dst[k] = m
			}
		default:
			dst[k] = deepCopy(v)
		}
	}
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = deepCopy(e)
		}
		return s
	default:
		return v
	}
}

func copyObject(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return deepCopy(m).(map[string]any)
}

// forget deletes the leaf at path from doc, so the next diff sends it
// again whatever doc believed.
func forget(doc map[string]any, path ...string) {
	for i, p := range path {
		if i == len(path)-1 {
			delete(doc, p)
			return
		}
		next, ok := doc[p].(map[string]any)
		if !ok {
			return
		}
		doc = next
	}
}
