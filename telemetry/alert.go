package telemetry

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"
)

// AlertState is an alert's state on the wire: firing or resolved.
type AlertState uint8

const (
	// AlertFiring: the rule's condition has held for its `for` (sent again
	// every `repeat` while it holds).
	AlertFiring AlertState = 1
	// AlertResolved: the value went back past threshold ± hysteresis.
	AlertResolved AlertState = 2
)

// String is the wire form: "firing" or "resolved".
func (s AlertState) String() string {
	switch s {
	case AlertFiring:
		return "firing"
	case AlertResolved:
		return "resolved"
	}
	return ""
}

// Alert is one alert message as the buffer keeps it: an edge-evaluated
// rule changed state (or repeats while firing). It is stamped like the
// reading that triggered it, so it is re-stamped the same way.
type Alert struct {
	Name     string
	State    AlertState
	Sensor   string
	Quantity string
	// Value is the triggering reading's value; Threshold the rule's.
	Value, Threshold float64
	// ReadingSeq is the seq of the reading that triggered the alert (the
	// alert record has a seq of its own, sent as "seq").
	ReadingSeq uint64

	Time  time.Time
	Clock ClockState
	Boot  uint64
	Mono  time.Duration
}

// alertVersion marks a stored alert record (readings are 1, gaps 2): the
// reading header, then
//
//	state u8 | reading_seq u64 | value f64 | threshold f64 |
//	len(name) u8 | name | len(sensor) u8 | sensor | len(quantity) u8 | quantity
//
// A version byte of its own, rather than a flag in the reading's form,
// keeps every record written before alerts existed readable unchanged.
const alertVersion = 3

// alertFixed is the header (26) plus state, reading_seq, value, threshold.
const alertFixed = 26 + 1 + 8 + 8 + 8

// MarshalAlert appends the stored form of a to dst.
func MarshalAlert(dst []byte, a Alert) ([]byte, error) {
	for _, s := range []string{a.Name, a.Sensor, a.Quantity} {
		if len(s) > MaxNameLen {
			return dst, fmt.Errorf("telemetry: alert name %q longer than %d bytes", s, MaxNameLen)
		}
	}
	if a.State != AlertFiring && a.State != AlertResolved {
		return dst, fmt.Errorf("telemetry: alert state %d", a.State)
	}
	dst = append(dst, alertVersion, byte(a.Clock))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(a.Time.UnixNano()))
	dst = binary.LittleEndian.AppendUint64(dst, a.Boot)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(a.Mono))
	dst = append(dst, byte(a.State))
	dst = binary.LittleEndian.AppendUint64(dst, a.ReadingSeq)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.Value))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.Threshold))
	for _, s := range []string{a.Name, a.Sensor, a.Quantity} {
		dst = append(dst, byte(len(s)))
		dst = append(dst, s...)
	}
	return dst, nil
}

// alertView holds an alert record's own fields inside a RecordView; the
// names alias the record's bytes.
type alertView struct {
	state            AlertState
	readingSeq       uint64
	value, threshold float64
	name, quantity   []byte // the sensor is RecordView.sensor
}

// parseAlert fills v from a stored alert record (b[0] == alertVersion).
func parseAlert(v *RecordView, b []byte) bool {
	if len(b) < alertFixed+3 || ClockState(b[1]) > ClockCorrected {
		return false
	}
	st := AlertState(b[26])
	if st != AlertFiring && st != AlertResolved {
		return false
	}
	var names [3][]byte
	p := b[alertFixed:]
	for i := range names {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return false
		}
		names[i] = p[1 : 1+int(p[0])]
		p = p[1+int(p[0]):]
	}
	if len(p) != 0 {
		return false
	}
	v.Clock = ClockState(b[1])
	v.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(b[2:]))).UTC()
	v.Boot = binary.LittleEndian.Uint64(b[10:])
	v.Mono = time.Duration(binary.LittleEndian.Uint64(b[18:]))
	v.alert = &alertView{
		state:      st,
		readingSeq: binary.LittleEndian.Uint64(b[27:]),
		value:      math.Float64frombits(binary.LittleEndian.Uint64(b[35:])),
		threshold:  math.Float64frombits(binary.LittleEndian.Uint64(b[43:])),
		name:       names[0],
		quantity:   names[2],
	}
	v.sensor = names[1]
	return true
}

// IsAlert reports whether the view is an alert record. The publisher sends
// those alone, on the alert topic, ahead of readings.
func (v *RecordView) IsAlert() bool { return v.alert != nil }

// Alert decodes an alert view (zero when the view is not one).
func (v *RecordView) Alert() Alert {
	if v.alert == nil {
		return Alert{}
	}
	a := v.alert
	return Alert{Name: string(a.name), State: a.state, Sensor: string(v.sensor), Quantity: string(a.quantity),
		Value: a.value, Threshold: a.threshold, ReadingSeq: a.readingSeq,
		Time: v.Time, Clock: v.Clock, Boot: v.Boot, Mono: v.Mono}
}

// appendAlertFields writes an alert's fields inside its object's braces:
//
//	"alert":…,"state":…,"sensor":…,"quantity":…,"value":…,"threshold":…,
//	"ts":"…"[,"clock":…],"seq":…,"reading_seq":…
//
// seq is the alert record's own seq (unique, so consumers deduplicate
// alerts on (device, epoch, seq) as they do readings); reading_seq is the
// reading that triggered it.
func appendAlertFields(dst []byte, seq uint64, v *RecordView) []byte {
	a := v.alert
	dst = append(dst, `"alert":`...)
	dst = appendString(dst, a.name)
	dst = append(dst, `,"state":"`...)
	dst = append(dst, a.state.String()...)
	dst = append(dst, `","sensor":`...)
	dst = appendString(dst, v.sensor)
	dst = append(dst, `,"quantity":`...)
	dst = appendString(dst, a.quantity)
	dst = append(dst, `,"value":`...)
	dst = appendFloat(dst, a.value)
	dst = append(dst, `,"threshold":`...)
	dst = appendFloat(dst, a.threshold)
	dst = append(dst, `,"ts":"`...)
	dst = appendTime(dst, v.Time)
	dst = append(dst, '"')
	if c := v.Clock.String(); c != "" {
		dst = append(dst, `,"clock":"`...)
		dst = append(dst, c...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"reading_seq":`...)
	return strconv.AppendUint(dst, a.readingSeq, 10)
}

// IsAlertRecord reports whether stored bytes are an alert record, by their
// kind byte alone: the publisher scans the buffer for alerts this way
// without parsing every reading.
func IsAlertRecord(b []byte) bool { return len(b) > 0 && b[0] == alertVersion }
