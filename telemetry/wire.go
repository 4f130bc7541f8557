package telemetry

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeLayout is the wire form of ts: RFC 3339, UTC, milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// AppendBatchStart appends the batched wire message up to its readings:
//
//	{"device":"kit-001","epoch":"…","readings":[{"sensor":…,"seq":…,"ts":…,"values":{…}},…]}
//
// The readings follow one at a time (AppendRecordItem), separated by
// commas, and AppendBatchEnd closes the message. A batch is framed by
// hand so that a packer under a byte limit encodes each reading once,
// straight into the message, and cuts it back out if it crosses the limit.
func AppendBatchStart(dst []byte, device, epoch string) []byte {
	dst = appendHead(dst, device, epoch)
	return append(dst, `,"readings":[`...)
}

// BatchEndLen is what AppendBatchEnd adds: what a batch being packed
// will grow by when it is closed.
const BatchEndLen = len(batchEnd)

const batchEnd = "]}"

// AppendBatchEnd closes a batch opened by AppendBatchStart.
func AppendBatchEnd(dst []byte) []byte { return append(dst, batchEnd...) }

// appendHead writes {"device":…[,"epoch":…], the start of both message forms.
func appendHead(dst []byte, device, epoch string) []byte {
	dst = append(dst, `{"device":`...)
	dst = appendString(dst, device)
	if epoch != "" {
		dst = append(dst, `,"epoch":`...)
		dst = appendString(dst, epoch)
	}
	return dst
}

// appendReadingFields writes a reading's fields, inside its object's
// braces, names in the wire order (sorted). The view takes this way for
// records whose names are not stored in that order.
func appendReadingFields(dst []byte, seq uint64, r Reading) []byte {
	dst = appendFieldsHead(dst, r.Sensor, seq, r.Time, r.Clock)
	for i, name := range sortedNames(r.Values) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, name)
		dst = append(dst, ':')
		dst = appendFloat(dst, r.Values[name])
	}
	return append(dst, '}')
}

// appendFieldsHead writes a reading's fields up to the opening brace of
// its values: "sensor":…,"seq":…,"ts":"…"[,"clock":"…"],"values":{
func appendFieldsHead[S ~string | ~[]byte](dst []byte, sensor S, seq uint64, t time.Time, c ClockState) []byte {
	dst = append(dst, `"sensor":`...)
	dst = appendString(dst, sensor)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"ts":"`...)
	dst = appendTime(dst, t)
	dst = append(dst, '"')
	if c := c.String(); c != "" {
		dst = append(dst, `,"clock":"`...)
		dst = append(dst, c...)
		dst = append(dst, '"')
	}
	return append(dst, `,"values":{`...)
}

// appendFloat writes the shortest form that reads back to the same float.
// NaN and ±Inf are not JSON: the scheduler never lets them in, but a
// message must stay parseable whatever a record holds, so they become null.
func appendFloat(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	if b, ok := appendFewDecimals(dst, v); ok {
		return b
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}

// fewDecimals is the most decimals appendFewDecimals writes, and
// fewDecimalsMax bounds |v|·10^fewDecimals (2^50).
const (
	fewDecimals    = 6
	fewDecimalsPow = 1e6
	fewDecimalsMax = 1 << 50
)

// appendFewDecimals writes v as strconv.AppendFloat(dst, v, 'f', -1, 64)
// does when v has a decimal form with at most fewDecimals decimals that
// reads back to v, as sensor values mostly do (drivers round to their
// resolution); ok is false otherwise, and for zero. It costs a multiply, a
// divide and integer digits rather than a shortest-digits search.
//
// Why the bytes are the same: let m = round(|v|·10^6) and suppose
// m/10^6 == |v| in float64. m and 10^6 are exact and the division is
// correctly rounded, so the decimal D = m·10^-6 reads back to v. Because
// |v|·10^6 < 2^50, a float64's rounding interval around |v| is less than
// a quarter of 10^-6 wide, so no other 6-decimal number reads back to v,
// and any shorter decimal that does is D itself (with trailing zeros
// dropped); conversely if any decimal with at most 6 decimals reads back
// to v, the product is within a quarter of it and round finds it. Dropping
// D's trailing zeros thus gives the fewest decimals, hence the fewest
// significant digits, and the only decimal with that many: exactly the
// shortest form strconv picks, printed in 'f' form.
func appendFewDecimals(dst []byte, v float64) ([]byte, bool) {
	a := math.Abs(v)
	x := a * fewDecimalsPow
	if v == 0 || !(x < fewDecimalsMax) {
		return dst, false
	}
	mf := math.Round(x)
	if mf/fewDecimalsPow != a {
		return dst, false
	}
	m, k := uint64(mf), fewDecimals
	for k > 0 && m%10 == 0 {
		m /= 10
		k--
	}
	var digits [24]byte
	d := strconv.AppendUint(digits[:0], m, 10)
	if v < 0 {
		dst = append(dst, '-')
	}
	if len(d) <= k { // 0.000ddd
		dst = append(dst, '0', '.')
		for range k - len(d) {
			dst = append(dst, '0')
		}
		return append(dst, d...), true
	}
	dst = append(dst, d[:len(d)-k]...)
	if k > 0 {
		dst = append(dst, '.')
		dst = append(dst, d[len(d)-k:]...)
	}
	return dst, true
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
// It takes bytes as well, so names can be written straight from a stored
// record. Runs of bytes that need no escaping are copied whole.
func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			// At most UTFMax bytes: for []byte the conversion stays on the stack.
			r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			if r != utf8.RuneError || size != 1 {
				i += size // valid UTF-8 is written as it is
				continue
			}
		}
		dst = append(dst, s[start:i]...)
		switch {
		case c >= utf8.RuneSelf:
			dst = append(dst, `\ufffd`...)
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// FormatTime is the wire form of a timestamp.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }
