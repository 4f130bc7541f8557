package telemetry

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeLayout is the wire form of ts: RFC 3339, UTC, milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Item is a reading with the seq the buffer gave it.
type Item struct {
	Seq uint64
	Reading
}

// AppendMessage appends the one-reading wire message:
//
//	{"device":"kit-001","epoch":"…","sensor":"soil-1","seq":42,"ts":"…","values":{"moisture":61.5}}
//
// epoch is omitted when empty. It is hand-written rather than encoding/json
// because draining a backlog encodes millions of these and must keep up
// with the broker, not with reflection.
func AppendMessage(dst []byte, device, epoch string, it Item) []byte {
	dst = append(dst, `{"device":`...)
	dst = appendString(dst, device)
	if epoch != "" {
		dst = append(dst, `,"epoch":`...)
		dst = appendString(dst, epoch)
	}
	dst = append(dst, ',')
	dst = appendItemFields(dst, it)
	return append(dst, '}')
}

// AppendBatch appends the batched wire message:
//
//	{"device":"kit-001","epoch":"…","readings":[{"sensor":…,"seq":…,"ts":…,"values":{…}},…]}
func AppendBatch(dst []byte, device, epoch string, items []Item) []byte {
	dst = append(dst, `{"device":`...)
	dst = appendString(dst, device)
	if epoch != "" {
		dst = append(dst, `,"epoch":`...)
		dst = appendString(dst, epoch)
	}
	dst = append(dst, `,"readings":[`...)
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendItem(dst, it)
	}
	return append(dst, "]}"...)
}

// AppendItem appends one reading as it stands inside a batch's readings
// array: {"sensor":…,"seq":…,"ts":…,"values":{…}}. The publisher builds
// batches with it one reading at a time, so packing under a byte limit
// encodes each reading once.
func AppendItem(dst []byte, it Item) []byte {
	dst = append(dst, '{')
	dst = appendItemFields(dst, it)
	return append(dst, '}')
}

// BatchOverhead is the size of a batch message without its readings, and
// ItemSize the size one reading adds: the publisher packs batches under the
// payload limit with them.
func BatchOverhead(device, epoch string) int {
	return len(AppendBatch(nil, device, epoch, nil))
}

// ItemSize is the number of bytes it adds to a batch (comma included).
func ItemSize(it Item) int {
	return len(appendItemFields(nil, it)) + 3
}

func appendItemFields(dst []byte, it Item) []byte {
	dst = append(dst, `"sensor":`...)
	dst = appendString(dst, it.Sensor)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, it.Seq, 10)
	dst = append(dst, `,"ts":"`...)
	dst = it.Time.UTC().AppendFormat(dst, TimeLayout)
	dst = append(dst, '"')
	if c := it.Clock.String(); c != "" {
		dst = append(dst, `,"clock":"`...)
		dst = append(dst, c...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"values":{`...)
	for i, name := range sortedNames(it.Values) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, name)
		dst = append(dst, ':')
		dst = appendFloat(dst, it.Values[name])
	}
	return append(dst, '}')
}

// appendFloat writes the shortest form that reads back to the same float.
// NaN and ±Inf are not JSON: the scheduler never lets them in, but a
// message must stay parseable whatever a record holds, so they become null.
func appendFloat(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// FormatTime is the wire form of a timestamp.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }
