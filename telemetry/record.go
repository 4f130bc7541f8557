package telemetry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// The buffer stores readings in this compact binary form rather than as
// wire JSON: the wire form depends on settings that may change while a
// reading waits (batching, re-stamping after the clock syncs), and binary
// is a third of the size on an SD card.
//
//	version u8 | clock u8 | unix nanos i64 | boot u64 | mono i64 |
//	len(sensor) u8 | sensor | n u8 | n × (len(name) u8 | name | float64 bits u64)
const recordVersion = 1

// ErrRecord is returned when stored bytes are not a valid record.
var ErrRecord = errors.New("telemetry: malformed record")

// MaxNameLen bounds sensor and quantity names so a record's lengths fit a byte.
const MaxNameLen = 255

// MarshalRecord appends the stored form of r to dst.
func MarshalRecord(dst []byte, r Reading) ([]byte, error) {
	if len(r.Sensor) > MaxNameLen {
		return dst, fmt.Errorf("telemetry: sensor name longer than %d bytes", MaxNameLen)
	}
	if len(r.Values) > 255 {
		return dst, fmt.Errorf("telemetry: %d values in one reading, at most 255", len(r.Values))
	}
	dst = append(dst, recordVersion, byte(r.Clock))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Time.UnixNano()))
	dst = binary.LittleEndian.AppendUint64(dst, r.Boot)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Mono))
	dst = append(dst, byte(len(r.Sensor)))
	dst = append(dst, r.Sensor...)
	dst = append(dst, byte(len(r.Values)))
	for _, name := range sortedNames(r.Values) {
		if len(name) > MaxNameLen {
			return dst, fmt.Errorf("telemetry: quantity name longer than %d bytes", MaxNameLen)
		}
		dst = append(dst, byte(len(name)))
		dst = append(dst, name...)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(r.Values[name]))
	}
	return dst, nil
}

// UnmarshalRecord decodes a stored record. It never panics on bad bytes.
func UnmarshalRecord(b []byte) (Reading, error) {
	var r Reading
	d := decoder{b: b}
	if v := d.byte(); v != recordVersion {
		return r, fmt.Errorf("%w: version %d", ErrRecord, v)
	}
	r.Clock = ClockState(d.byte())
	if r.Clock > ClockCorrected {
		return r, fmt.Errorf("%w: clock state %d", ErrRecord, r.Clock)
	}
	r.Time = time.Unix(0, int64(d.u64())).UTC()
	r.Boot = d.u64()
	r.Mono = time.Duration(d.u64())
	r.Sensor = d.str()
	n := int(d.byte())
	r.Values = make(map[string]float64, n)
	for i := 0; i < n; i++ {
		name := d.str()
		r.Values[name] = math.Float64frombits(d.u64())
	}
	if d.err || len(d.b) != 0 {
		return Reading{}, fmt.Errorf("%w: length", ErrRecord)
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) take(n int) []byte {
	if d.err || len(d.b) < n {
		d.err = true
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) byte() byte  { return d.take(1)[0] }
func (d *decoder) u64() uint64 { return binary.LittleEndian.Uint64(d.take(8)) }
func (d *decoder) str() string { return string(d.take(int(d.byte()))) }

func sortedNames(m map[string]float64) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
