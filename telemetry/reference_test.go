package telemetry

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The reference the production path (ParseRecord, RecordView,
// AppendRecordMessage, AppendRecordItem) is held to, byte for byte: the
// straightforward way, a record decoded field by field into a Reading,
// its values in a map, encoded with the names sorted from that map. The
// agent never runs it; the view does the same work in place.

// unmarshalRecord decodes a stored reading record. It never panics on bad
// bytes.
func unmarshalRecord(b []byte) (Reading, error) {
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

// appendMessage is the reference of AppendRecordMessage.
func appendMessage(dst []byte, device, epoch string, seq uint64, r Reading) []byte {
	dst = appendHead(dst, device, epoch)
	dst = append(dst, ',')
	dst = appendReadingFields(dst, seq, r)
	return append(dst, '}')
}

// appendItem is the reference of AppendRecordItem.
func appendItem(dst []byte, seq uint64, r Reading) []byte {
	dst = append(dst, '{')
	dst = appendReadingFields(dst, seq, r)
	return append(dst, '}')
}

// restampReading is the reference of RecordView.Restamp: an unsynced
// reading from this boot is dated now minus the monotonic time since it.
func restampReading(r *Reading, now time.Time, nowMono time.Duration, boot uint64) {
	if r.Clock == ClockUnsynced && r.Boot == boot && nowMono >= r.Mono {
		r.Time, r.Clock = now.Add(r.Mono-nowMono), ClockCorrected
	}
}
