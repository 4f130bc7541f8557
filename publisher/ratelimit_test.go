package publisher

import (
	"context"
	"testing"
	"time"
)

// fakeMono is a monotonic clock the test moves.
type fakeMono struct{ t time.Duration }

func (f *fakeMono) now() time.Duration { return f.t }

// A sender that obeys take() must never exceed rate×1.1 in any one-second
// window, and must reach the rate over a long run.
func TestLimiterBoundsEveryWindow(t *testing.T) {
	for _, rate := range []int{1, 10, 100, 1000} {
		clk := &fakeMono{}
		l := newLimiter(rate, clk.now)
		var sent []time.Duration
		n := rate * 20
		for len(sent) < n {
			if d := l.take(); d > 0 {
				clk.t += d
				continue
			}
			sent = append(sent, clk.t)
		}
		limit := rate + max(1, rate/10)
		j := 0
		for i := range sent {
			for sent[i]-sent[j] >= time.Second {
				j++
			}
			if i-j+1 > limit {
				t.Fatalf("rate %d: %d messages within one second ending at %v (limit %d)", rate, i-j+1, sent[i], limit)
			}
		}
		elapsed := sent[n-1] - sent[0]
		want := time.Duration(float64(n-max(1, rate/10)) / float64(rate) * float64(time.Second))
		if elapsed < want-time.Millisecond || elapsed > want+want/100+time.Millisecond {
			t.Fatalf("rate %d: %d messages took %v, want about %v", rate, n, elapsed, want)
		}
	}
}

// A sender that always has a message ready, at the rate: after the bucket
// runs dry it waits for a full bucket and sends a burst, so the process
// wakes once per burst (rate/burst times a second), not once per message.
func TestLimiterSendsInBurstsAtTheRate(t *testing.T) {
	clk := &fakeMono{}
	l := newLimiter(100, clk.now)
	bursts := map[time.Duration]int{}
	for sent := 0; sent < 2000; {
		if d := l.take(); d > 0 {
			clk.t += d
			continue
		}
		bursts[clk.t]++
		sent++
	}
	if len(bursts) != 200 {
		t.Fatalf("2000 messages at 100/s went at %d instants, want 200 bursts of 10", len(bursts))
	}
	for at, n := range bursts {
		if n != 10 {
			t.Fatalf("%d messages at %v, want bursts of 10", n, at)
		}
	}
}

func TestLimiterBurstAfterIdle(t *testing.T) {
	clk := &fakeMono{}
	l := newLimiter(100, clk.now)
	for l.take() == 0 {
	}
	clk.t += time.Hour
	n := 0
	for l.take() == 0 {
		n++
	}
	if n != 10 {
		t.Fatalf("after an idle hour %d messages went at once, want the burst of 10", n)
	}
}

func TestLimiterUnlimited(t *testing.T) {
	l := newLimiter(0, nil)
	for i := 0; i < 1000; i++ {
		if d := l.take(); d != 0 {
			t.Fatalf("unlimited limiter asked to wait %v", d)
		}
	}
	if err := l.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLimiterWaitHonoursContext(t *testing.T) {
	clk := &fakeMono{} // never advances: no token will come
	l := newLimiter(1, clk.now)
	l.take()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.wait(ctx); err != context.DeadlineExceeded {
		t.Fatalf("wait returned %v, want the context's error", err)
	}
}
