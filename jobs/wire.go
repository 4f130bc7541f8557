package jobs

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// JobExecution is the execution as the service sends it ($next/get,
// start-next, notify-next, <jobId>/get).
type JobExecution struct {
	JobID           string            `json:"jobId"`
	ThingName       string            `json:"thingName,omitempty"`
	JobDocument     json.RawMessage   `json:"jobDocument,omitempty"`
	Status          string            `json:"status"`
	StatusDetails   map[string]string `json:"statusDetails,omitempty"`
	QueuedAt        int64             `json:"queuedAt,omitempty"`
	StartedAt       int64             `json:"startedAt,omitempty"`
	LastUpdatedAt   int64             `json:"lastUpdatedAt,omitempty"`
	VersionNumber   int64             `json:"versionNumber"`
	ExecutionNumber int64             `json:"executionNumber"`
}

// ExecutionState is the state an update's reply carries.
type ExecutionState struct {
	Status        string            `json:"status"`
	StatusDetails map[string]string `json:"statusDetails,omitempty"`
	VersionNumber int64             `json:"versionNumber"`
}

// reply is the union of the accepted and rejected payloads the client
// reads.
type reply struct {
	ClientToken    string          `json:"clientToken"`
	Execution      *JobExecution   `json:"execution"`
	ExecutionState *ExecutionState `json:"executionState"`
	Code           string          `json:"code"`
	Message        string          `json:"message"`
}

// The limits AWS puts on statusDetails (API reference,
// JobExecutionStatusDetails, and the UpdateJobExecution request): at most
// 10 pairs, keys of 1..128 characters of [a-zA-Z0-9:_-], values of 1..1024
// characters with no control characters.
const (
	maxDetails        = 10
	maxDetailKey      = 128
	maxDetailValue    = 1024
	detailsLeftOutKey = "details_left_out"
)

// sanitizeDetails makes details acceptable to the service, so a
// progress report or a result is never rejected for its form: bad key
// characters become '_', control characters a space, long values are cut
// (ending in "…"), empty ones become "-", and past 10 pairs the last kept
// one says how many were left out. Keys are taken in sorted order.
func sanitizeDetails(d map[string]string) map[string]string {
	if len(d) == 0 {
		return nil
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]string, min(len(d), maxDetails))
	for i, k := range keys {
		if len(out) == maxDetails-1 && len(keys)-i > 1 {
			out[detailsLeftOutKey] = strconv.Itoa(len(keys) - i)
			break
		}
		out[detailKey(k)] = detailValue(d[k])
	}
	return out
}

func detailKey(k string) string {
	var b strings.Builder
	for _, r := range k {
		if b.Len() >= maxDetailKey {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == ':', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

func detailValue(v string) string {
	var b strings.Builder
	n := 0
	for _, r := range v {
		if n == maxDetailValue-1 && utf8.RuneCountInString(v) > maxDetailValue {
			b.WriteRune('…')
			break
		}
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Co, unicode.Cs) || r == utf8.RuneError {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}
