package shadowemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
)

// AWS's limits on a shadow.
const (
	maxStateBytes   = 8 * 1024 // desired and reported together, metadata not counted
	maxNesting      = 6
	maxClientToken  = 64
	codeBadRequest  = 400
	codeNotFound    = 404
	codeConflict    = 409
	codeTooLarge    = 413
	msgInvalidJSON  = "Invalid JSON"
	msgConflict     = "Version conflict"
	msgTooLarge     = "The payload exceeds the maximum size allowed"
	msgNestingLimit = "JSON contains too many levels of nesting; maximum is 6"
)

// Rejection is a refused request, as AWS publishes it on .../rejected.
type Rejection struct {
	Code        int
	Message     string
	ClientToken string
}

func (r *Rejection) Error() string { return fmt.Sprintf("shadowemu: %d %s", r.Code, r.Message) }

func (r *Rejection) payload(ts int64) map[string]any {
	m := map[string]any{"code": r.Code, "message": r.Message, "timestamp": ts}
	if r.ClientToken != "" {
		m["clientToken"] = r.ClientToken
	}
	return m
}

// document is one stored shadow.
type document struct {
	desired, reported         map[string]any
	metaDesired, metaReported map[string]any
	version                   int64
}

// Doc is a shadow document as get returns it, numbers decoded as float64
// the way encoding/json decodes any JSON.
type Doc struct {
	State struct {
		Desired  map[string]any `json:"desired,omitempty"`
		Reported map[string]any `json:"reported,omitempty"`
		Delta    map[string]any `json:"delta,omitempty"`
	} `json:"state"`
	Metadata struct {
		Desired  map[string]any `json:"desired,omitempty"`
		Reported map[string]any `json:"reported,omitempty"`
	} `json:"metadata"`
	Version   int64 `json:"version"`
	Timestamp int64 `json:"timestamp"`
}

// Document returns a copy of a shadow, or false when it does not exist.
func (e *Emulator) Document(thing, shadowName string) (Doc, bool) {
	e.mu.Lock()
	d, ok := e.docs[docKey{thing: thing, name: shadowName}]
	var b []byte
	if ok {
		b, _ = json.Marshal(d.full(e.now().Unix(), ""))
	}
	e.mu.Unlock()
	var out Doc
	if !ok {
		return out, false
	}
	_ = json.Unmarshal(b, &out)
	return out, true
}

// full is the get/accepted document.
func (d *document) full(ts int64, token string) map[string]any {
	state := map[string]any{}
	meta := map[string]any{}
	if len(d.desired) > 0 {
		state["desired"] = d.desired
		meta["desired"] = d.metaDesired
	}
	if len(d.reported) > 0 {
		state["reported"] = d.reported
		meta["reported"] = d.metaReported
	}
	if delta := deltaOf(d.desired, d.reported); len(delta) > 0 {
		state["delta"] = delta
	}
	m := map[string]any{"state": state, "metadata": meta, "version": d.version, "timestamp": ts}
	if token != "" {
		m["clientToken"] = token
	}
	return m
}

// parseRequest decodes a request body; an empty body is an empty request
// (AWS takes an empty get).
func parseRequest(payload []byte) (map[string]any, string, *Rejection) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return map[string]any{}, "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, "", &Rejection{Code: codeBadRequest, Message: msgInvalidJSON}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", &Rejection{Code: codeBadRequest, Message: msgInvalidJSON}
	}
	req, ok := v.(map[string]any)
	if !ok {
		return nil, "", &Rejection{Code: codeBadRequest, Message: msgInvalidJSON}
	}
	var token string
	if t, ok := req["clientToken"]; ok {
		s, isString := t.(string)
		if !isString || len(s) > maxClientToken {
			return nil, "", &Rejection{Code: codeBadRequest, Message: "Invalid clientToken"}
		}
		token = s
	}
	return req, token, nil
}

func notFound(k docKey, token string) *Rejection {
	name := k.name
	if name == "" {
		name = k.thing
	}
	return &Rejection{Code: codeNotFound, Message: "No shadow exists with name: '" + name + "'", ClientToken: token}
}

func (e *Emulator) getLocked(k docKey, prefix string, payload []byte, ts int64) ([]outgoing, *Rejection) {
	_, token, rej := parseRequest(payload)
	if rej != nil {
		return nil, rej
	}
	d, ok := e.docs[k]
	if !ok {
		return nil, notFound(k, token)
	}
	return []outgoing{{prefix + "/get/accepted", d.full(ts, token)}}, nil
}

func (e *Emulator) deleteLocked(k docKey, prefix string, payload []byte, ts int64) ([]outgoing, *Rejection) {
	_, token, rej := parseRequest(payload)
	if rej != nil {
		return nil, rej
	}
	d, ok := e.docs[k]
	if !ok {
		return nil, notFound(k, token)
	}
	delete(e.docs, k)
	e.deleted[k] = d.version
	m := map[string]any{"version": d.version, "timestamp": ts}
	if token != "" {
		m["clientToken"] = token
	}
	return []outgoing{{prefix + "/delete/accepted", m}}, nil
}

func (e *Emulator) updateLocked(k docKey, prefix string, payload []byte, ts int64) ([]outgoing, *Rejection) {
	req, token, rej := parseRequest(payload)
	if rej != nil {
		return nil, rej
	}
	bad := func(msg string) *Rejection { return &Rejection{Code: codeBadRequest, Message: msg, ClientToken: token} }
	var (
		version    int64
		hasVersion bool
	)
	if v, ok := req["version"]; ok {
		n, isInt := integer(v)
		if !isInt || n < 0 {
			return nil, bad("Invalid version")
		}
		version, hasVersion = n, true
	}
	rawState, ok := req["state"]
	if !ok {
		return nil, bad("Missing required node: state")
	}
	state, ok := rawState.(map[string]any)
	if !ok {
		return nil, bad("State node must be an object")
	}
	var reqDesired, reqReported map[string]any
	_, hasDesired := state["desired"]
	_, hasReported := state["reported"]
	for name, v := range state {
		switch name {
		case "desired", "reported":
			m, isMap := v.(map[string]any)
			if v != nil && !isMap {
				if name == "desired" {
					return nil, bad("Desired node must be an object")
				}
				return nil, bad("Reported node must be an object")
			}
			if depth(m) > maxNesting {
				return nil, bad(msgNestingLimit)
			}
			if name == "desired" {
				reqDesired = m
			} else {
				reqReported = m
			}
		default:
			return nil, bad("State contains an invalid node")
		}
	}

	d := e.docs[k]
	current := e.deleted[k]
	if d != nil {
		current = d.version
	}
	if hasVersion && e.conflicts[k] > 0 {
		e.conflicts[k]--
		if d != nil {
			d.version++
		} else {
			e.deleted[k]++
		}
		return nil, &Rejection{Code: codeConflict, Message: msgConflict, ClientToken: token}
	}
	if hasVersion && version != current {
		return nil, &Rejection{Code: codeConflict, Message: msgConflict, ClientToken: token}
	}

	next := &document{version: current + 1}
	if d != nil {
		next.desired = copyMap(d.desired)
		next.reported = copyMap(d.reported)
		next.metaDesired = copyMap(d.metaDesired)
		next.metaReported = copyMap(d.metaReported)
	} else {
		next.desired, next.reported = map[string]any{}, map[string]any{}
		next.metaDesired, next.metaReported = map[string]any{}, map[string]any{}
	}
	// "desired": null (or "reported": null) removes the whole section.
	if hasDesired {
		if reqDesired == nil {
			next.desired, next.metaDesired = map[string]any{}, map[string]any{}
		} else {
			merge(next.desired, reqDesired)
			mergeMeta(next.metaDesired, reqDesired, ts)
		}
	}
	if hasReported {
		if reqReported == nil {
			next.reported, next.metaReported = map[string]any{}, map[string]any{}
		} else {
			merge(next.reported, reqReported)
			mergeMeta(next.metaReported, reqReported, ts)
		}
	}
	if size(next.desired)+size(next.reported) > maxStateBytes {
		return nil, &Rejection{Code: codeTooLarge, Message: msgTooLarge, ClientToken: token}
	}

	e.docs[k] = next
	delete(e.deleted, k)
	withToken := func(m map[string]any) map[string]any {
		if token != "" {
			m["clientToken"] = token
		}
		return m
	}
	reqMeta := map[string]any{}
	if reqDesired != nil {
		reqMeta["desired"] = metaOf(reqDesired, ts)
	}
	if reqReported != nil {
		reqMeta["reported"] = metaOf(reqReported, ts)
	}
	out := []outgoing{{prefix + "/update/accepted", withToken(map[string]any{
		"state": state, "metadata": reqMeta, "version": next.version, "timestamp": ts,
	})}}
	// The delta goes out when desired was written and still differs from
	// reported. AWS's documentation describes the delta as following a
	// change of desired; a report alone publishes none here.
	if hasDesired {
		if delta := deltaOf(next.desired, next.reported); len(delta) > 0 {
			out = append(out, outgoing{prefix + "/update/delta", withToken(map[string]any{
				"state": delta, "metadata": pick(next.metaDesired, delta),
				"version": next.version, "timestamp": ts,
			})})
		}
	}
	docs := map[string]any{"current": side(next), "timestamp": ts}
	if d != nil {
		docs["previous"] = side(d)
	}
	out = append(out, outgoing{prefix + "/update/documents", withToken(docs)})
	return out, nil
}

// side is one half of an update/documents message.
func side(d *document) map[string]any {
	state := map[string]any{}
	meta := map[string]any{}
	if len(d.desired) > 0 {
		state["desired"] = copyMap(d.desired)
		meta["desired"] = copyMap(d.metaDesired)
	}
	if len(d.reported) > 0 {
		state["reported"] = copyMap(d.reported)
		meta["reported"] = copyMap(d.metaReported)
	}
	return map[string]any{"state": state, "metadata": meta, "version": d.version}
}

// merge applies a request section: null deletes, objects merge, anything
// else (arrays too) replaces. Objects emptied by deletes are removed, so
// they cannot linger in a delta.
func merge(dst, req map[string]any) {
	for k, v := range req {
		if v == nil {
			delete(dst, k)
			continue
		}
		rm, rIsMap := v.(map[string]any)
		if !rIsMap {
			dst[k] = copyValue(v)
			continue
		}
		dm, dIsMap := dst[k].(map[string]any)
		if !dIsMap {
			dm = map[string]any{}
		}
		merge(dm, rm)
		if len(dm) == 0 {
			delete(dst, k)
		} else {
			dst[k] = dm
		}
	}
}

// mergeMeta keeps per-leaf timestamps in step with merge.
func mergeMeta(meta, req map[string]any, ts int64) {
	for k, v := range req {
		if v == nil {
			delete(meta, k)
			continue
		}
		rm, rIsMap := v.(map[string]any)
		if !rIsMap {
			meta[k] = map[string]any{"timestamp": ts}
			continue
		}
		mm, ok := meta[k].(map[string]any)
		if !ok || isLeafMeta(mm) {
			mm = map[string]any{}
		}
		mergeMeta(mm, rm, ts)
		if len(mm) == 0 {
			delete(meta, k)
		} else {
			meta[k] = mm
		}
	}
}

func isLeafMeta(m map[string]any) bool {
	_, ok := m["timestamp"]
	return ok && len(m) == 1
}

func metaOf(section map[string]any, ts int64) map[string]any {
	out := map[string]any{}
	for k, v := range section {
		if m, ok := v.(map[string]any); ok {
			out[k] = metaOf(m, ts)
		} else if v != nil {
			out[k] = map[string]any{"timestamp": ts}
		}
	}
	return out
}

// pick is the metadata of the paths present in shape.
func pick(meta, shape map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range shape {
		m, ok := meta[k].(map[string]any)
		if !ok {
			continue
		}
		if sub, isMap := v.(map[string]any); isMap && !isLeafMeta(m) {
			out[k] = pick(m, sub)
		} else {
			out[k] = m
		}
	}
	return out
}

// deltaOf is the part of desired that differs from reported, nested.
func deltaOf(desired, reported map[string]any) map[string]any {
	out := map[string]any{}
	for k, dv := range desired {
		rv, ok := reported[k]
		dm, dIsMap := dv.(map[string]any)
		rm, rIsMap := rv.(map[string]any)
		if dIsMap && rIsMap {
			if sub := deltaOf(dm, rm); len(sub) > 0 {
				out[k] = sub
			}
			continue
		}
		if !ok || !jsonEqual(dv, rv) {
			out[k] = copyValue(dv)
		}
	}
	return out
}

// jsonEqual compares JSON values, numbers by value (5 equals 5.0).
func jsonEqual(a, b any) bool {
	an, aIsNum := a.(json.Number)
	bn, bIsNum := b.(json.Number)
	if aIsNum && bIsNum {
		af, err1 := strconv.ParseFloat(string(an), 64)
		bf, err2 := strconv.ParseFloat(string(bn), 64)
		return err1 == nil && err2 == nil && af == bf
	}
	as, aIsSlice := a.([]any)
	bs, bIsSlice := b.([]any)
	if aIsSlice && bIsSlice {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if !jsonEqual(as[i], bs[i]) {
				return false
			}
		}
		return true
	}
	am, aIsMap := a.(map[string]any)
	bm, bIsMap := b.(map[string]any)
	if aIsMap && bIsMap {
		if len(am) != len(bm) {
			return false
		}
		for k, v := range am {
			w, ok := bm[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// depth counts nested objects and arrays, the section itself being 1.
func depth(v any) int {
	switch t := v.(type) {
	case map[string]any:
		d := 0
		for _, e := range t {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		d := 0
		for _, e := range t {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

func size(m map[string]any) int {
	if len(m) == 0 {
		return 0
	}
	b, err := json.Marshal(m)
	if err != nil {
		return math.MaxInt32
	}
	return len(b)
}

func integer(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return copyValue(m).(map[string]any)
}

func copyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = copyValue(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = copyValue(e)
		}
		return s
	}
	return v
}
