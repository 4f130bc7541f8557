package publisher

import "time"

// backoff spaces connection attempts: the ceiling doubles from min to max
// with each failure, and each wait is drawn uniformly between min and the
// ceiling. The floor keeps even the luckiest draw from turning into a tight
// loop; the spread keeps a fleet that lost its broker at the same moment
// from coming back in lockstep (and a duplicate client id from kicking its
// twin off at a fixed rhythm).
type backoff struct {
	min, max time.Duration
	// rand returns a uniform value in [0, n).
	rand func(n int64) int64

	ceiling time.Duration
}

// next returns the wait before the next attempt and raises the ceiling.
func (b *backoff) next() time.Duration {
	if b.ceiling < b.min {
		b.ceiling = b.min
	}
	d := b.min
	if span := b.ceiling - b.min; span > 0 {
		d += time.Duration(b.rand(int64(span) + 1))
	}
	if b.ceiling < b.max {
		b.ceiling = min(2*b.ceiling, b.max)
	}
	return d
}

// reset is called only once a connection has stayed up long enough to be
// called healthy: a broker that accepts and then drops us at once must not
// be hammered at the floor rate.
func (b *backoff) reset() { b.ceiling = 0 }
