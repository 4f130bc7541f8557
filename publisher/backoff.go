package publisher

import "time"

// schedule is the shape of the reconnect backoff; see the package
// documentation ("Backoff") for why each number is what it is.
type schedule struct {
	// min is the floor of every wait: no tight loop whatever the draw.
	min time.Duration
	// fast caps the ceiling while the kit has had a CONNACK within
	// patience: a kit waits at most this long after the broker returns
	// from an outage of up to patience.
	fast time.Duration
	// max caps the ceiling once patience has passed without any CONNACK
	// (a broker gone for long, a refused certificate): a kit that cannot
	// connect does not keep a cellular link busy with TLS handshakes.
	max      time.Duration
	patience time.Duration
}

// ceiling is the upper bound of the attempt-th wait (attempt 0 is the
// first after trouble began) when the kit was last connected (or Run
// began) down ago. It starts at four times the floor: a broker restart
// drops a whole fleet at the same instant, and even the first retries must
// not reach it in the same second (a 1-2 s window would put all of them in
// one; 1-4 s puts at most about a third).
func (s schedule) ceiling(attempt int, down time.Duration) time.Duration {
	capAt := min(s.fast, s.max)
	if down >= s.patience {
		capAt = s.max
	}
	c := 4 * s.min
	for i := 0; i < attempt && c < capAt; i++ {
		c *= 2
	}
	return max(min(c, capAt), s.min)
}

// wait is the attempt-th wait: uniform in [min, ceiling]. rand returns a
// uniform value in [0, n). It is a pure function of its arguments, so the
// schedule is tested (and a fleet simulated) with a seeded generator.
func (s schedule) wait(attempt int, down time.Duration, rand func(n int64) int64) time.Duration {
	d := s.min
	if span := s.ceiling(attempt, down) - s.min; span > 0 {
		d += time.Duration(rand(int64(span) + 1))
	}
	return d
}

// backoff spaces connection attempts. attempt counts trouble (failed
// connects and connections lost before they were stable) since the last
// stable connection; the spread keeps a fleet that lost its broker at the
// same moment from coming back in lockstep (and a duplicate client id from
// kicking its twin off at a fixed rhythm).
type backoff struct {
	s schedule
	// rand returns a uniform value in [0, n).
	rand func(n int64) int64

	attempt int
}

// next returns the wait before the next attempt, down being the time since
// the last CONNACK (or since Run began), and counts the attempt.
func (b *backoff) next(down time.Duration) time.Duration {
	d := b.s.wait(b.attempt, down, b.rand)
	if b.attempt < 64 {
		b.attempt++
	}
	return d
}

// reset is called only once a connection has stayed up long enough to be
// called healthy: a broker that accepts and then drops us at once must not
// be met at the floor rate.
func (b *backoff) reset() { b.attempt = 0 }
