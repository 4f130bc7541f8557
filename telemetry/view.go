package telemetry

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// RecordView is a stored record parsed in place: the header fields
// decoded, the sensor name and values left in the record's bytes. Draining
// a backlog turns records into wire JSON through it with no map, no sort
// and no allocation per reading. Tests hold its output byte for byte to
// the straightforward way, a record decoded into a Reading and that
// encoded (reference_test.go).
//
// A view aliases the bytes it was parsed from: they must not change while
// the view is in use.
type RecordView struct {
	Clock ClockState
	Time  time.Time
	Boot  uint64
	Mono  time.Duration

	sensor []byte
	values []byte // n × (len(name) u8 | name | float64 bits u64)
	// sorted: names strictly ascending, the wire order, as MarshalRecord
	// writes them. Other valid records (duplicate or unordered names,
	// which only hand-made or corrupted-but-checksummed bytes have) are
	// encoded through a decoded Reading, so the output is the same.
	sorted bool

	// gap records (MarshalGap): sensor holds the reason
	gap            bool
	gapFrom, gapTo uint64

	// alert records (MarshalAlert): sensor holds the sensor
	alert *alertView
}

// ParseRecord parses a stored record without copying it: the readings
// MarshalRecord writes, the gap records MarshalGap writes and the alert
// records MarshalAlert writes. Other bytes
// get an error wrapping ErrRecord, never a panic.
func ParseRecord(b []byte) (RecordView, error) {
	var v RecordView
	if len(b) > 0 && b[0] == gapVersion {
		if !parseGap(&v, b) {
			return RecordView{}, fmt.Errorf("%w: version %d", ErrRecord, b[0])
		}
		return v, nil
	}
	if len(b) > 0 && b[0] == alertVersion {
		if !parseAlert(&v, b) {
			return RecordView{}, fmt.Errorf("%w: version %d", ErrRecord, b[0])
		}
		return v, nil
	}
	// The checks run in the reference decoder's order (reference_test.go),
	// which tests hold the errors to as well.
	if len(b) == 0 || b[0] != recordVersion {
		return v, fmt.Errorf("%w: version %d", ErrRecord, at(b, 0))
	}
	if c := ClockState(at(b, 1)); c > ClockCorrected {
		return v, fmt.Errorf("%w: clock state %d", ErrRecord, c)
	}
	if len(b) < 28 { // the fixed header, an empty sensor, no values
		return v, fmt.Errorf("%w: length", ErrRecord)
	}
	v.Clock = ClockState(b[1])
	v.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(b[2:]))).UTC()
	v.Boot = binary.LittleEndian.Uint64(b[10:])
	v.Mono = time.Duration(binary.LittleEndian.Uint64(b[18:]))
	rest := b[26:]
	sl := int(rest[0])
	if len(rest) < 1+sl+1 {
		return RecordView{}, fmt.Errorf("%w: length", ErrRecord)
	}
	v.sensor = rest[1 : 1+sl]
	n := int(rest[1+sl])
	v.values = rest[2+sl:]
	v.sorted = true
	var prev []byte
	for i, p := 0, v.values; i < n; i++ {
		if len(p) < 1 || len(p) < 1+int(p[0])+8 {
			return RecordView{}, fmt.Errorf("%w: length", ErrRecord)
		}
		name := p[1 : 1+int(p[0])]
		if i > 0 && bytes.Compare(prev, name) >= 0 {
			v.sorted = false
		}
		prev = name
		p = p[1+len(name)+8:]
		if i == n-1 && len(p) != 0 {
			return RecordView{}, fmt.Errorf("%w: length", ErrRecord)
		}
	}
	if n == 0 && len(v.values) != 0 {
		return RecordView{}, fmt.Errorf("%w: length", ErrRecord)
	}
	return v, nil
}

// at is b[i], or 0 past its end (what the reference decoder reads there).
func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// Sensor is the sensor's name.
func (v *RecordView) Sensor() string { return string(v.sensor) }

// Restamp re-dates an unsynced reading taken in this boot once the clock is
// synchronized: the wall time now minus the monotonic time elapsed since the
// sample. Readings from an earlier boot cannot be corrected (their monotonic
// clock is gone) and stay unsynced.
func (v *RecordView) Restamp(now time.Time, nowMono time.Duration, boot uint64) {
	if v.Clock != ClockUnsynced || v.Boot != boot || nowMono < v.Mono {
		return
	}
	v.Time, v.Clock = now.Add(-(nowMono - v.Mono)), ClockCorrected
}

// Reading decodes the view into a Reading (allocating its map).
func (v *RecordView) Reading() Reading {
	r := Reading{Sensor: string(v.sensor), Time: v.Time, Clock: v.Clock, Boot: v.Boot, Mono: v.Mono}
	r.Values = make(map[string]float64)
	for p := v.values; len(p) > 0; {
		name := p[1 : 1+int(p[0])]
		r.Values[string(name)] = math.Float64frombits(binary.LittleEndian.Uint64(p[1+len(name):]))
		p = p[1+len(name)+8:]
	}
	return r
}

// AppendRecordMessage appends the one-reading wire message for the view
// with seq:
//
//	{"device":"kit-001","epoch":"…","sensor":"soil-1","seq":42,"ts":"…","values":{"moisture":61.5}}
//
// epoch is omitted when empty; a gap record has its own fields (gap.go).
// It is hand-written rather than encoding/json because draining a backlog
// encodes millions of these and must keep up with the broker, not with
// reflection.
func AppendRecordMessage(dst []byte, device, epoch string, seq uint64, v *RecordView) []byte {
	dst = appendHead(dst, device, epoch)
	dst = append(dst, ',')
	dst = appendViewFields(dst, seq, v)
	return append(dst, '}')
}

// AppendRecordItem appends the view with seq as one element of a batch's
// readings array (AppendBatchStart): {"sensor":…,"seq":…,"ts":…,"values":{…}}.
func AppendRecordItem(dst []byte, seq uint64, v *RecordView) []byte {
	dst = append(dst, '{')
	dst = appendViewFields(dst, seq, v)
	return append(dst, '}')
}

func appendViewFields(dst []byte, seq uint64, v *RecordView) []byte {
	if v.alert != nil {
		return appendAlertFields(dst, seq, v)
	}
	if v.gap {
		return appendGapFields(dst, seq, v)
	}
	if !v.sorted {
		return appendReadingFields(dst, seq, v.Reading())
	}
	dst = appendFieldsHead(dst, v.sensor, seq, v.Time, v.Clock)
	for p := v.values; len(p) > 0; {
		if len(p) != len(v.values) {
			dst = append(dst, ',')
		}
		name := p[1 : 1+int(p[0])]
		dst = appendString(dst, name)
		dst = append(dst, ':')
		dst = appendFloat(dst, math.Float64frombits(binary.LittleEndian.Uint64(p[1+len(name):])))
		p = p[1+len(name)+8:]
	}
	return append(dst, '}')
}
