package logdedup

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeWall struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeWall) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeWall) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func TestDedupFoldsRepeats(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeWall{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h := newHandler(slog.NewTextHandler(&out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}), time.Minute, clk.now)
	log := slog.New(h).With("component", "publisher")

	// A broker down for an hour, retried every 10 s.
	for i := 0; i < 360; i++ {
		log.Warn("connect failed", "err", "dial tcp 127.0.0.1:8883: connect: connection refused")
		if i == 100 {
			log.Info("something else")
		}
		clk.add(10 * time.Second)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var fails, summaries int
	for _, l := range lines {
		if strings.Contains(l, "connect failed") {
			fails++
			if strings.Contains(l, "repeated=5") {
				summaries++
			} else if strings.Contains(l, "repeated=") {
				t.Errorf("unexpected count: %s", l)
			}
		}
	}
	if fails != 60 || summaries != 59 {
		t.Fatalf("360 failures over an hour gave %d lines (%d summaries), want 60 (59):\n%s", fails, summaries, out.String())
	}
	if !strings.Contains(out.String(), "something else") {
		t.Fatal("a different line was held back")
	}
	if !strings.Contains(lines[0], "component=publisher") {
		t.Fatalf("attributes lost: %s", lines[0])
	}
}

func TestDedupTellsLinesApart(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeWall{t: time.Unix(0, 0)}
	log := slog.New(newHandler(slog.NewTextHandler(&out, nil), time.Hour, clk.now))
	log.Warn("x", "err", "a")
	log.Warn("x", "err", "b")
	log.Error("x", "err", "a")
	log.With("k", 1).Warn("x", "err", "a")
	log.WithGroup("g").Warn("x", "err", "a")
	log.Warn("x", "err", "a") // the only repeat
	if n := strings.Count(out.String(), "\n"); n != 5 {
		t.Fatalf("%d lines, want 5:\n%s", n, out.String())
	}
}

func TestDedupBoundedMemory(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeWall{t: time.Unix(0, 0)}
	h := newHandler(slog.NewTextHandler(&out, nil), time.Hour, clk.now)
	log := slog.New(h)
	for i := 0; i < 3*maxDedupKeys; i++ {
		log.Info("distinct", "name", letters(i))
	}
	if n := len(h.st.seen); n > maxDedupKeys {
		t.Fatalf("%d keys remembered, bound is %d", n, maxDedupKeys)
	}
	if n := strings.Count(out.String(), "\n"); n != 3*maxDedupKeys {
		t.Fatalf("distinct lines were dropped: %d of %d", n, 3*maxDedupKeys)
	}
}

// letters names i without digits (digits are folded).
func letters(i int) string {
	s := ""
	for {
		s += string(rune('a' + i%26))
		i /= 26
		if i == 0 {
			return s
		}
	}
}

func TestDedupFoldsNumbers(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeWall{t: time.Unix(0, 0)}
	log := slog.New(newHandler(slog.NewTextHandler(&out, nil), time.Hour, clk.now))
	log.Warn("connection lost", "err", "read tcp 127.0.0.1:39546->127.0.0.1:8883: connection reset by peer")
	log.Warn("connection lost", "err", "read tcp 127.0.0.1:39612->127.0.0.1:8883: connection reset by peer")
	log.Warn("connection lost", "err", "EOF")
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Fatalf("%d lines, want 2 (the port is not a difference):\n%s", n, out.String())
	}
}

func TestDedupConcurrent(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	})
	log := slog.New(New(slog.NewTextHandler(w, nil), time.Hour))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				log.Warn("same", "g", letters(g%2))
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Fatalf("%d lines, want 2 (one per distinct line):\n%s", n, out.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A reconnect is a state change: its info line is written every time,
// even within the interval, so the log shows the outage ended.
func TestInfoLinesAreNeverFolded(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeWall{t: time.Unix(0, 0)}
	log := slog.New(newHandler(slog.NewTextHandler(&out, nil), time.Hour, clk.now))
	for i := 0; i < 3; i++ {
		log.Info("connected", "broker", "tls://b:8883")
		log.Warn("connect failed", "err", "refused")
		clk.add(time.Minute)
	}
	if n := strings.Count(out.String(), "msg=connected"); n != 3 {
		t.Fatalf("%d connected lines, want 3:\n%s", n, out.String())
	}
	if n := strings.Count(out.String(), "connect failed"); n != 1 {
		t.Fatalf("%d connect failed lines within the interval, want 1:\n%s", n, out.String())
	}
}
