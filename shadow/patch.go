package shadow

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// DesiredPatch turns one KEY=VALUE setting, as typed for `kitd demo
// --set`, into a desired document: "sensors.sim.interval", "5s" becomes
// {"sensors":{"sim":{"interval":"5s"}}}. VALUE is taken as JSON when it
// is JSON (true, 10, null, "x") and as a string otherwise. The value is
// not validated: the agent does that, and refusals show in reported
// errors.
func DesiredPatch(key, value string) (map[string]any, error) {
	var path []string
	switch {
	case strings.HasPrefix(key, "sensors."):
		// A sensor name may contain dots; the field is the last part.
		rest := strings.TrimPrefix(key, "sensors.")
		i := strings.LastIndex(rest, ".")
		if i <= 0 || i == len(rest)-1 {
			return nil, fmt.Errorf("shadow: %q: want sensors.<name>.<field>", key)
		}
		path = []string{"sensors", rest[:i], rest[i+1:]}
	default:
		path = strings.Split(key, ".")
	}
	for _, p := range path {
		if p == "" {
			return nil, fmt.Errorf("shadow: %q: empty part in the key", key)
		}
	}
	var v any = value
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	var parsed any
	if dec.Decode(&parsed) == nil {
		if _, err := dec.Token(); err == io.EOF {
			v = parsed
		}
	}
	doc := map[string]any{}
	m := doc
	for _, p := range path[:len(path)-1] {
		next := map[string]any{}
		m[p] = next
		m = next
	}
	m[path[len(path)-1]] = v
	return doc, nil
}
