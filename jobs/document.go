package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// The job document's fields the client itself reads; every other field
// belongs to the operation (DecodeParams).
const (
	fieldOperation   = "operation"
	fieldStepTimeout = "step_timeout_minutes"
)

// AWS's bounds of stepTimeoutInMinutes (1 minute to 7 days).
const (
	minStepMinutes = 1
	maxStepMinutes = 10080
)

// document is the client's part of a job document.
type document struct {
	operation   string
	stepMinutes int // 0: none given
}

// parseDocument checks the common fields. Its errors are the REJECTED
// reason, so they say what is wrong in the document's own terms.
func parseDocument(raw json.RawMessage) (document, error) {
	var m map[string]json.RawMessage
	if len(bytes.TrimSpace(raw)) == 0 {
		return document{}, errors.New("the job has no document")
	}
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return document{}, errors.New("the job document is not a JSON object")
	}
	var d document
	op, ok := m[fieldOperation]
	if !ok {
		return document{}, errors.New(`the job document has no "operation" field`)
	}
	if err := json.Unmarshal(op, &d.operation); err != nil || d.operation == "" {
		return document{}, errors.New(`"operation" must be a non-empty string, such as "kitd.read-now"`)
	}
	if st, ok := m[fieldStepTimeout]; ok {
		if err := json.Unmarshal(st, &d.stepMinutes); err != nil || d.stepMinutes < minStepMinutes || d.stepMinutes > maxStepMinutes {
			return document{}, fmt.Errorf("%q must be an integer from %d to %d", fieldStepTimeout, minStepMinutes, maxStepMinutes)
		}
	}
	return d, nil
}

// DecodeParams decodes an operation's own fields of a job document into v
// (a pointer to a struct with json tags), strictly: a field the operation
// does not know is an error naming it, as an unknown config key is, so a
// typo in a document is refused rather than silently ignored. The
// client's fields (operation, step_timeout_minutes) are skipped.
func DecodeParams(doc json.RawMessage, v any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return errors.New("the job document is not a JSON object")
	}
	delete(m, fieldOperation)
	delete(m, fieldStepTimeout)
	rest, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("job document: %s", describeJSONError(err))
	}
	return nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%q: must be %s, not a JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return err.Error() // "json: unknown field \"x\"" names it
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice", "array":
		return "a list"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// knownList is the registered operation names, sorted, for REJECTED.
func knownList(ops map[string]Operation) []string {
	names := make([]string, 0, len(ops))
	for n := range ops {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
