package shadow

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/kitd-dev/kitd/sensors"
)

// The desired settings the agent accepts; their paths mirror the config
// file's.
const (
	fieldInterval = "interval"
	fieldEnabled  = "enabled"
	fieldBatch    = "mqtt.batch.max_readings"
)

// Bounds of mqtt.batch.max_readings from the shadow: a batch of 1000
// readings stays well inside AWS's 128 KB message limit.
const (
	minBatchReadings = 1
	maxBatchReadings = 1000
)

// key names one desired setting: a sensor's field, or the batch size.
type key struct {
	sensor string // "" for fieldBatch
	field  string
}

var batchKey = key{field: fieldBatch}

func (k key) path() string {
	if k.sensor == "" {
		return k.field
	}
	return "sensors." + k.sensor + "." + k.field
}

// reportedPath is where a setting is echoed in reported.
func (k key) reportedPath() []string {
	if k == batchKey {
		return []string{"mqtt", "batch", "max_readings"}
	}
	return []string{"sensors", k.sensor, k.field}
}

// setting is one validated desired value: raw is echoed in reported,
// the rest is what the Target gets.
type setting struct {
	raw any // string, bool or json.Number, as given
	d   time.Duration
	on  bool
	n   int
}

func (a setting) sameEffect(b setting) bool { return a.d == b.d && a.on == b.on && a.n == b.n }

// removal matches the settings a null in the desired document takes away.
type removal struct {
	all    bool   // "sensors": null
	sensor string // "sensors.<name>": null (field "")
	key    key    // one setting
}

func (r removal) matches(k key) bool {
	switch {
	case r.all:
		return k.sensor != ""
	case r.sensor != "":
		return k.sensor == r.sensor
	default:
		return k == r.key
	}
}

// parsed is a desired document checked against the rules.
type parsed struct {
	sets     map[key]setting
	removals []removal
	errs     map[string]string // path → message
	// paths are every path the document mentions, valid or not, so an
	// applied document clears the errors of the paths it set.
	paths map[string]bool
}

func (p *parsed) fail(path, format string, args ...any) {
	p.mark(path)
	p.errs[path] = fmt.Sprintf(format, args...)
}

// mark notes a path the document mentions, trimmed like errors keys so
// the two compare.
func (p *parsed) mark(path string) { p.paths[truncate(path, maxErrorKey)] = true }

// parseDesired validates a desired (or delta) document. Nothing is
// applied here; the caller applies p.sets and p.removals only when p.errs
// is empty.
func parseDesired(doc map[string]any, names map[string]bool) parsed {
	p := parsed{sets: map[key]setting{}, errs: map[string]string{}, paths: map[string]bool{}}
	for _, top := range sortedKeys(doc) {
		v := doc[top]
		switch top {
		case "sensors":
			p.sensors(v, names)
		case "mqtt":
			p.mqtt(v)
		default:
			if v != nil { // removing an unknown key changes nothing, so it is fine
				p.fail(top, "unknown key")
			}
		}
	}
	return p
}

func (p *parsed) sensors(v any, names map[string]bool) {
	if v == nil {
		p.removals = append(p.removals, removal{all: true})
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.fail("sensors", "must be an object of sensor names")
		return
	}
	for _, name := range sortedKeys(m) {
		sv := m[name]
		at := "sensors." + name
		if sv == nil {
			// A sensor gone from the config file may still have remote
			// settings to remove.
			p.removals = append(p.removals, removal{sensor: name})
			p.mark(at)
			continue
		}
		fields, ok := sv.(map[string]any)
		if !names[name] {
			if ok && allNull(fields) {
				for f := range fields {
					p.removals = append(p.removals, removal{key: key{sensor: name, field: f}})
				}
				p.mark(at)
				continue
			}
			p.fail(at, "no such sensor in the config file")
			continue
		}
		if !ok {
			p.fail(at, "must be an object with interval and/or enabled")
			continue
		}
		for _, f := range sortedKeys(fields) {
			k := key{sensor: name, field: f}
			fv := fields[f]
			p.mark(k.path())
			if fv == nil {
				if f == fieldInterval || f == fieldEnabled {
					p.removals = append(p.removals, removal{key: k})
				}
				continue
			}
			switch f {
			case fieldInterval:
				p.interval(k, fv)
			case fieldEnabled:
				b, ok := fv.(bool)
				if !ok {
					p.fail(k.path(), "must be true or false")
					continue
				}
				p.sets[k] = setting{raw: b, on: b}
			default:
				p.fail(k.path(), "unknown key (want interval or enabled)")
			}
		}
	}
}

func (p *parsed) interval(k key, v any) {
	s, ok := v.(string)
	if !ok {
		p.fail(k.path(), "must be a duration string such as \"30s\"")
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.fail(k.path(), "%q is not a duration such as \"30s\"", s)
		return
	}
	if err := sensors.ValidateInterval(d); err != nil {
		p.fail(k.path(), "%v", err)
		return
	}
	p.sets[k] = setting{raw: s, d: d}
}

func (p *parsed) mqtt(v any) {
	if v == nil {
		p.removals = append(p.removals, removal{key: batchKey})
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.fail("mqtt", "must be an object")
		return
	}
	for _, f := range sortedKeys(m) {
		if f != "batch" {
			if m[f] != nil {
				p.fail("mqtt."+f, "unknown key")
			}
			continue
		}
		switch bv := m[f].(type) {
		case nil:
			p.removals = append(p.removals, removal{key: batchKey})
		case map[string]any:
			for _, bf := range sortedKeys(bv) {
				if bf != "max_readings" {
					if bv[bf] != nil {
						p.fail("mqtt.batch."+bf, "unknown key")
					}
					continue
				}
				p.batch(bv[bf])
			}
		default:
			p.fail("mqtt.batch", "must be an object")
		}
	}
}

func (p *parsed) batch(v any) {
	p.mark(fieldBatch)
	if v == nil {
		p.removals = append(p.removals, removal{key: batchKey})
		return
	}
	n, ok := integer(v)
	if !ok || n < minBatchReadings || n > maxBatchReadings {
		p.fail(fieldBatch, "must be an integer from %d to %d", minBatchReadings, maxBatchReadings)
		return
	}
	p.sets[batchKey] = setting{raw: v, n: int(n)}
}

// integer accepts any JSON number with an integral value (5, 5.0, 5e0).
func integer(v any) (int64, bool) {
	var f float64
	switch t := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(t), 64); err != nil {
			return 0, false
		}
	case float64:
		f = t
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func allNull(m map[string]any) bool {
	for _, v := range m {
		if v != nil {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
