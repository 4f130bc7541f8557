package telemetry

import "time"

// Seconds from the Unix epoch to 0001-01-01T00:00:00Z and to
// 10000-01-01T00:00:00Z: within them the year has four digits and
// appendTime writes the digits itself.
const (
	minFastUnix = -62135596800
	maxFastUnix = 253402300800
)

// digits2 holds "00".."99", two bytes per number.
const digits2 = "" +
	"00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// appendTime appends t in TimeLayout. It writes the same bytes as
// t.UTC().AppendFormat(dst, TimeLayout) at a fraction of the cost
// (AppendFormat parses the layout for every call, and a backlog drain
// formats a million timestamps); outside years 1..9999, which AppendFormat
// writes with a sign or more digits, it falls back to AppendFormat.
func appendTime(dst []byte, t time.Time) []byte {
	sec := t.Unix()
	if sec < minFastUnix || sec >= maxFastUnix {
		return t.UTC().AppendFormat(dst, TimeLayout)
	}
	ms := t.Nanosecond() / 1e6 // AppendFormat truncates, it does not round
	// Shift the epoch to 0001-01-01 so days and seconds of day are
	// non-negative and plain division floors.
	s := uint64(sec - minFastUnix)
	days, sod := s/86400, s%86400
	y, m, d := civil(days)
	hh, mm, ss := sod/3600, sod/60%60, sod%60

	var b [len(TimeLayout)]byte
	put2(b[0:], y/100)
	put2(b[2:], y%100)
	b[4] = '-'
	put2(b[5:], m)
	b[7] = '-'
	put2(b[8:], d)
	b[10] = 'T'
	put2(b[11:], hh)
	b[13] = ':'
	put2(b[14:], mm)
	b[16] = ':'
	put2(b[17:], ss)
	b[19] = '.'
	b[20] = byte('0' + ms/100)
	put2(b[21:], uint64(ms%100))
	b[23] = 'Z'
	return append(dst, b[:]...)
}

func put2(b []byte, v uint64) {
	b[0], b[1] = digits2[2*v], digits2[2*v+1]
}

// civil converts days since 0001-01-01 (proleptic Gregorian) to year,
// month and day, with the era arithmetic of Howard Hinnant's
// civil_from_days: days are counted in 400-year eras of 146097 days from
// a March 1st, so the leap day falls at the end of each counted year.
func civil(days uint64) (y, m, d uint64) {
	// 0001-01-01 is day 306 counted from 0000-03-01.
	z := days + 306
	era := z / 146097
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100) // [0, 365], from March 1st
	mp := (5*doy + 2) / 153                  // [0, 11], March = 0
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
		y++
	}
	return y, m, d
}
