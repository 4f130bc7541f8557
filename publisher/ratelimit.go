package publisher

import (
	"context"
	"sync"
	"time"
)

// limiter is a token bucket over messages: rate per second, with a burst
// of a tenth of a second's worth (at least one). A small burst keeps any
// one-second window under rate×1.1, so AWS IoT's 100 publishes/s is not
// exceeded after an idle spell. A nil *limiter allows everything.
type limiter struct {
	now func() time.Duration // monotonic

	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Duration
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
	if l.tokens >= 1 {
		l.tokens--
		return 0
	}
	wait := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
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
