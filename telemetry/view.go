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
// and no allocation per reading; UnmarshalRecord and AppendMessage remain
// the reference the view's output is tested against, byte for byte.
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
}

// ParseRecord parses a stored record without copying it. It accepts and
// rejects exactly the bytes UnmarshalRecord does, plus gap records
// (MarshalGap), and never panics.
func ParseRecord(b []byte) (RecordView, error) {
	var v RecordView
	if len(b) > 0 && b[0] == gapVersion {
		if !parseGap(&v, b) {
			return RecordView{}, fmt.Errorf("%w: version %d", ErrRecord, b[0])
		}
		return v, nil
	}
	// The checks run in UnmarshalRecord's order so the errors match too.
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

// at is b[i], or 0 past its end (what UnmarshalRecord's decoder reads there).
func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// Sensor is the sensor's name.
func (v *RecordView) Sensor() string { return string(v.sensor) }

// Restamp applies Reading.Restamp's rule to the view.
func (v *RecordView) Restamp(now time.Time, nowMono time.Duration, boot uint64) {
	v.Time, v.Clock = restamp(v.Time, v.Clock, v.Boot, v.Mono, now, nowMono, boot)
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

// AppendRecordMessage appends what AppendMessage appends for the decoded
// view with seq.
func AppendRecordMessage(dst []byte, device, epoch string, seq uint64, v *RecordView) []byte {
	dst = appendHead(dst, device, epoch)
	dst = append(dst, ',')
	dst = appendViewFields(dst, seq, v)
	return append(dst, '}')
}

// AppendRecordItem appends what AppendItem appends for the decoded view
// with seq: one element of a batch's readings array.
func AppendRecordItem(dst []byte, seq uint64, v *RecordView) []byte {
	dst = append(dst, '{')
	dst = appendViewFields(dst, seq, v)
	return append(dst, '}')
}

func appendViewFields(dst []byte, seq uint64, v *RecordView) []byte {
	if v.gap {
		return appendGapFields(dst, seq, v)
	}
	if !v.sorted {
		return appendItemFields(dst, Item{Seq: seq, Reading: v.Reading()})
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
