package shadow

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/kitd-dev/kitd/telemetry"
)

// State is the agent's live state, as reported; the caller fills it from
// the scheduler, the buffer and the publisher.
type State struct {
	Agent   Agent
	Sensors []Sensor
	Buffer  Buffer
	MQTT    MQTT
	// Alerts are the firing edge alerts, reported under alerts by name.
	Alerts []Alert
}

// MQTT is the delivery settings the shadow reports beside the applied
// mqtt.batch.max_readings.
type MQTT struct {
	// BatchMaxDelay is mqtt.batch.max_delay, reported as a duration
	// string at mqtt.batch.max_delay (always, "0s" included, so a reload
	// that turns it off shows).
	BatchMaxDelay time.Duration
}

// Alert is one firing alert.
type Alert struct {
	Name, Sensor, Quantity string
	// Value made it fire; Since is when.
	Threshold, Value float64
	Since            time.Time
}

// Agent describes the running agent.
type Agent struct {
	Version, Arch string
	Started       time.Time
	// CertExpires is the client certificate's NotAfter; zero omits it.
	CertExpires time.Time
	// CertPreviousExpires is, after a certificate renewal, the replaced
	// certificate's NotAfter while it is kept (until the new one has
	// connected); zero omits it.
	CertPreviousExpires time.Time
}

// Sensor is one configured sensor's live state.
type Sensor struct {
	Name, Driver string
	Interval     time.Duration
	Enabled, OK  bool
	LastError    string
	LastReading  time.Time
}

// Buffer is the disk buffer's state.
type Buffer struct {
	Pending, Bytes, Dropped int64
	// Lost counts lost seqs by reason (full, corrupt, torn, discarded,
	// unused); reported as dropped_by_reason.
	Lost map[string]int64
	// DroppedRanges are [from, to] seq ranges dropped or skipped, oldest
	// first; the latest ten are reported.
	DroppedRanges [][2]uint64
}

// Size budget of the reported state. AWS limits a shadow's state (desired
// and reported together) to 8 KB; the desired state mirrors at most two
// short settings per sensor, so reported keeps 2 KiB free for it.
const (
	maxReportedBytes = 6 << 10
	maxDroppedRanges = 10
	// Long messages are trimmed in steps until the document fits; the
	// last step drops last_error altogether.
	lastErrorLong  = 120
	lastErrorShort = 40
	// errors entries are bounded so a desired document full of junk
	// cannot push the reported state over the limit.
	maxErrors      = 5
	maxErrorKey    = 80
	maxErrorString = 80
)

// buildLocked makes the full reported document from the live state, the
// applied desired settings and the errors. Values are normalised through
// JSON so they compare equal to what the service sends back.
func (s *Shadow) buildLocked(st State) map[string]any {
	var (
		doc  map[string]any
		size int
	)
	for _, limit := range []int{lastErrorLong, lastErrorShort, 0} {
		doc = s.buildWith(st, limit)
		b, _ := json.Marshal(doc)
		if size = len(b); size <= maxReportedBytes {
			s.oversized = false
			return normalise(doc)
		}
	}
	if !s.oversized {
		// Once per episode: AWS will refuse reports (413) until sensors
		// or their names get fewer.
		s.oversized = true
		s.log.Error("shadow: reported state too large even without last_error; AWS may refuse it",
			"bytes", size, "budget", maxReportedBytes, "sensors", len(st.Sensors))
	}
	return normalise(doc)
}

func (s *Shadow) buildWith(st State, lastErrorMax int) map[string]any {
	agent := map[string]any{
		"version": st.Agent.Version,
		"arch":    st.Agent.Arch,
	}
	if !st.Agent.Started.IsZero() {
		agent["started"] = telemetry.FormatTime(st.Agent.Started)
	}
	if !st.Agent.CertExpires.IsZero() {
		agent["cert_expires"] = telemetry.FormatTime(st.Agent.CertExpires)
	}
	if !st.Agent.CertPreviousExpires.IsZero() {
		agent["cert_previous_expires"] = telemetry.FormatTime(st.Agent.CertPreviousExpires)
	}
	sensors := make(map[string]any, len(st.Sensors))
	for _, sn := range st.Sensors {
		m := map[string]any{
			"driver":   sn.Driver,
			"interval": sn.Interval.String(),
			"enabled":  sn.Enabled,
			"ok":       sn.OK,
		}
		// An applied desired value is echoed in the form it was given,
		// so the service sees reported equal to desired.
		if v, ok := s.applied[key{sensor: sn.Name, field: fieldInterval}]; ok {
			m["interval"] = v.raw
		}
		if v, ok := s.applied[key{sensor: sn.Name, field: fieldEnabled}]; ok {
			m["enabled"] = v.raw
		}
		if e := truncate(sn.LastError, lastErrorMax); e != "" {
			m["last_error"] = e
		}
		if !sn.LastReading.IsZero() {
			m["last_reading_ts"] = telemetry.FormatTime(sn.LastReading)
		}
		sensors[sn.Name] = m
	}
	ranges := st.Buffer.DroppedRanges
	if len(ranges) > maxDroppedRanges {
		ranges = ranges[len(ranges)-maxDroppedRanges:]
	}
	dr := make([]any, len(ranges))
	for i, r := range ranges {
		dr[i] = []any{r[0], r[1]}
	}
	// Only the reasons that happened: the document stays small, and a key
	// once reported is never reported as null (which would delete it).
	byReason := map[string]any{}
	for r, n := range st.Buffer.Lost {
		if n > 0 {
			byReason[r] = n
		}
	}
	var batch any = s.base.batch
	if v, ok := s.applied[batchKey]; ok {
		batch = v.raw
	}
	doc := map[string]any{
		"connected": !s.closing,
		"agent":     agent,
		"sensors":   sensors,
		"buffer": map[string]any{
			"pending":        st.Buffer.Pending,
			"bytes":          st.Buffer.Bytes,
			"dropped":        st.Buffer.Dropped,
			"dropped_ranges": dr,
		},
		"mqtt": map[string]any{"batch": map[string]any{"max_readings": batch, "max_delay": st.MQTT.BatchMaxDelay.String()}},
	}
	// Always present, so the last alert resolving sends null for it.
	active := map[string]any{}
	for _, a := range st.Alerts {
		active[a.Name] = map[string]any{
			"sensor": a.Sensor, "quantity": a.Quantity,
			"threshold": a.Threshold, "value": a.Value,
			"since": telemetry.FormatTime(a.Since),
		}
	}
	doc["alerts"] = active
	if len(byReason) > 0 {
		doc["buffer"].(map[string]any)["dropped_by_reason"] = byReason
	}
	if len(s.errs) > 0 {
		errs := make(map[string]any, len(s.errs))
		for p, m := range s.errs {
			errs[p] = m
		}
		doc["errors"] = errs
	}
	return doc
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 3 {
		return ""
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// normalise round-trips v through JSON, numbers kept as json.Number, so a
// document built here compares equal to the same document decoded from
// the service.
func normalise(v map[string]any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	out, err := decodeObject(b)
	if err != nil {
		return v
	}
	return out
}
