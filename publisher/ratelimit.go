package publisher

import (
	"context"
	"math"
	"sync"
	"time"
)

// limiter is a token bucket over messages: rate per second, with a burst
// of a tenth of a second's worth (at least one). A small burst keeps any
// one-second window under rate×1.1, so AWS IoT's 100 publishes/s is not
// exceeded after an idle spell. A nil *limiter allows everything.
//
// Once the bucket runs dry it refills completely before the next token is
// spent: a kit publishing at the limit sends a burst every tenth of a
// second rather than one message every 1/rate. The rate and every window's
// bound are the same; what changes is the wake-ups, one per burst instead
// of one per message (the pacing timer and its PUBACK each wake the
// process, and at 100 messages/s those wake-ups were most of kitd's CPU:
// issue 10), and the readings of one sensor tick leave together.
type limiter struct {
	now func() time.Duration // monotonic

	mu        sync.Mutex
	rate      float64 // tokens per second
	burst     float64
	tokens    float64
	last      time.Duration
	refilling bool // ran dry: nothing is spent until the bucket is full
}

func newLimiter(perSecond int, now func() time.Duration) *limiter {
	if perSecond <= 0 {
		return nil
	}
	burst := max(1, float64(perSecond)/10)
	return &limiter{now: now, rate: float64(perSecond), burst: burst, tokens: burst, last: now()}
}

// take spends a token and returns 0 when one is available; otherwise it
// spends nothing and returns how long until one will be.
func (l *limiter) take() time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now > l.last {
		l.tokens = min(l.burst, l.tokens+(now-l.last).Seconds()*l.rate)
		l.last = now
	}
	if l.refilling && l.tokens >= l.burst-1e-9 {
		l.refilling = false
	}
	if !l.refilling && l.tokens >= 1 {
		l.tokens--
		l.refilling = l.tokens < 1
		return 0
	}
	l.refilling = true
	// Rounded up, so the wait is never a nanosecond short of a full bucket.
	wait := time.Duration(math.Ceil((l.burst - l.tokens) / l.rate * float64(time.Second)))
	return max(wait, time.Microsecond)
}

// wait blocks until a token is spent or ctx is done.
func (l *limiter) wait(ctx context.Context) error {
	for {
		d := l.take()
		if d == 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
