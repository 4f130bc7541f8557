package telemetry

import (
	"encoding/binary"
	"strconv"
	"time"
)

// Gap tells consumers, in the telemetry stream itself, that the seqs From..To
// (inclusive) will never arrive, and why: full (dropped for space), corrupt
// (damaged on disk), torn (cut by a crash), discarded (could not be sent),
// unused (reserved by a process that crashed; no reading had them).
type Gap struct {
	From, To uint64
	Reason   string
	// Time, Clock, Boot and Mono stamp when the gap was found, like a
	// reading's.
	Time  time.Time
	Clock ClockState
	Boot  uint64
	Mono  time.Duration
}

// gapVersion marks a stored gap record: the reading header, then
// from u64 | to u64 | len(reason) u8 | reason.
const gapVersion = 2

// MarshalGap appends the stored form of g to dst. Gaps live in the buffer
// beside readings, so they are delivered (and re-stamped) exactly like them.
func MarshalGap(dst []byte, g Gap) []byte {
	dst = append(dst, gapVersion, byte(g.Clock))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(g.Time.UnixNano()))
	dst = binary.LittleEndian.AppendUint64(dst, g.Boot)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(g.Mono))
	dst = binary.LittleEndian.AppendUint64(dst, g.From)
	dst = binary.LittleEndian.AppendUint64(dst, g.To)
	reason := g.Reason
	if len(reason) > MaxNameLen {
		reason = reason[:MaxNameLen]
	}
	dst = append(dst, byte(len(reason)))
	return append(dst, reason...)
}

// parseGap fills v from a stored gap record (b[0] == gapVersion).
func parseGap(v *RecordView, b []byte) bool {
	if len(b) < 26+17 || ClockState(b[1]) > ClockCorrected {
		return false
	}
	rest := b[26:]
	n := int(rest[16])
	if len(rest) != 17+n {
		return false
	}
	v.Clock = ClockState(b[1])
	v.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(b[2:]))).UTC()
	v.Boot = binary.LittleEndian.Uint64(b[10:])
	v.Mono = time.Duration(binary.LittleEndian.Uint64(b[18:]))
	v.gap = true
	v.gapFrom = binary.LittleEndian.Uint64(rest)
	v.gapTo = binary.LittleEndian.Uint64(rest[8:])
	v.sensor = rest[17:] // the reason
	return true
}

// appendGapFields writes "seq":…,"ts":"…"[,"clock":…],"gap":{"from":…,"to":…,"reason":…}.
// A gap record carries a seq of its own, like a reading, so that it too is
// accounted for; rules that select on values never see it.
func appendGapFields(dst []byte, seq uint64, v *RecordView) []byte {
	dst = append(dst, `"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"ts":"`...)
	dst = appendTime(dst, v.Time)
	dst = append(dst, '"')
	if c := v.Clock.String(); c != "" {
		dst = append(dst, `,"clock":"`...)
		dst = append(dst, c...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"gap":{"from":`...)
	dst = strconv.AppendUint(dst, v.gapFrom, 10)
	dst = append(dst, `,"to":`...)
	dst = strconv.AppendUint(dst, v.gapTo, 10)
	dst = append(dst, `,"reason":`...)
	dst = appendString(dst, v.sensor)
	return append(dst, '}')
}

// IsGap reports whether the view is a gap record; GapRange its seqs.
func (v *RecordView) IsGap() bool { return v.gap }

// GapRange returns the seqs a gap record explains, and its reason.
func (v *RecordView) GapRange() (from, to uint64, reason string) {
	return v.gapFrom, v.gapTo, string(v.sensor)
}
