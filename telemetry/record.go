package telemetry

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// The buffer stores readings in this compact binary form rather than as
// wire JSON: the wire form depends on settings that may change while a
// reading waits (batching, re-stamping after the clock syncs), and binary
// is a third of the size on an SD card.
//
//	version u8 | clock u8 | unix nanos i64 | boot u64 | mono i64 |
//	len(sensor) u8 | sensor | n u8 | n × (len(name) u8 | name | float64 bits u64)
//
// The first byte is the record's kind and version: 1 a reading (this
// form), 2 a gap (gap.go), 3 an alert (alert.go). A new kind takes a new
// byte, so records written by an older kitd stay readable.
const recordVersion = 1

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

func sortedNames(m map[string]float64) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
