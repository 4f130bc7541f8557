//go:build mosquitto

package publisher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// OnConnect hooks run after every connect with a context that ends with
// the connection; a subscription handler may block and publish (with
// paho's own callbacks under OrderMatters, that stalls or deadlocks the
// client: paho #208, #473) while telemetry keeps flowing.
func TestSessionHooks(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	px := newRawProxy(t, b)
	cfg := brokerConfig(b)
	cfg.Broker = px.url()
	log, _ := newLog(t)
	p, err := newPublisher(cfg, Deps{Device: kit, Buffer: buf, Clock: newTestClock(true), Log: log}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	sessions := make(chan *Session, 4)
	ended := make(chan struct{}, 4)
	p.OnConnect(func(ctx context.Context, s *Session) {
		err := s.Subscribe(ctx, "kits/"+kit+"/cmd", func(topic string, payload []byte) {
			time.Sleep(30 * time.Millisecond) // a slow handler
			// The test cuts the connection, possibly under this publish.
			if err := s.Publish(ctx, "kits/"+kit+"/reply", append([]byte("re:"), payload...), false); err != nil && !errors.Is(err, ErrConnectionLost) {
				t.Errorf("publish from a handler: %v", err)
			}
		})
		if err != nil {
			t.Errorf("subscribe: %v", err)
		}
		sessions <- s
		<-ctx.Done()
		ended <- struct{}{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done := make(chan struct{})
	go func() {
		runErr = p.Run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	s1 := waitSession(t, sessions)

	replies := func(n int) func() bool {
		return func() bool { return len(obs.other["kits/"+kit+"/reply"]) >= n }
	}
	for i := 0; i < 5; i++ {
		obs.publish(t, "kits/"+kit+"/cmd", fmt.Sprint(i))
	}
	seqs := appendReadings(t, buf, "air", 50)
	obs.waitAll(t, seqs, 10*time.Second) // not held up by the slow handler
	obs.waitFor(t, 10*time.Second, "5 replies", replies(5))
	obs.mu.Lock()
	got := slices.Sorted(slices.Values(obs.other["kits/"+kit+"/reply"]))
	obs.mu.Unlock()
	// paho with OrderMatters(false) hands each message to its own
	// goroutine: arrival order is not kept, every message is.
	if strings.Join(got, ",") != "re:0,re:1,re:2,re:3,re:4" {
		t.Errorf("replies %v", got)
	}

	px.cutAll()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the hook's context was not cancelled when its connection ended")
	}
	if err := s1.Publish(context.Background(), "kits/"+kit+"/reply", []byte("late"), false); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("publish on an ended session: %v, want ErrConnectionLost", err)
	}
	waitSession(t, sessions) // run again after the reconnect
	obs.publish(t, "kits/"+kit+"/cmd", "again")
	obs.waitFor(t, 10*time.Second, "a reply after the reconnect", replies(6))

	if err := p.Run(ctx); !errors.Is(err, ErrRunTwice) {
		t.Errorf("second Run: %v, want ErrRunTwice", err)
	}
	cancel()
	select {
	case <-done:
		if runErr != nil {
			t.Fatal(runErr)
		}
	case <-time.After(cfg.ShutdownTimeout + time.Second):
		t.Fatal("Run did not return")
	}
	select {
	case <-ended:
	default:
		t.Error("Run returned before the hook did")
	}
}

func waitSession(t *testing.T, c chan *Session) *Session {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("OnConnect hook did not run")
		return nil
	}
}

// lockedMono is a monotonic clock the test moves while the publisher reads it.
type lockedMono struct {
	mu sync.Mutex
	t  time.Duration
}

func (m *lockedMono) now() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

func (m *lockedMono) add(d time.Duration) {
	m.mu.Lock()
	m.t += d
	m.mu.Unlock()
}

// max_publish_rate holds the publisher to the limiter's clock: at 10/s
// (a burst of one), each 100 ms of limiter time lets exactly one more
// message out, and an idle stretch lets out no more than the burst.
func TestPublishRateFollowsLimiterClock(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	cfg := brokerConfig(b)
	cfg.MaxPublishRate = 10
	clk := &lockedMono{}
	opt := testOptions()
	opt.limiterNow = clk.now
	appendReadings(t, buf, "air", 20)
	startPublisher(t, cfg, buf, opt)
	delivered := func() int {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return len(obs.order)
	}
	obs.waitFor(t, 10*time.Second, "connected", func() bool {
		for _, s := range obs.status {
			if strings.Contains(s, `"connected":true`) {
				return true
			}
		}
		return false
	})
	// The status message took the only token.
	time.Sleep(300 * time.Millisecond)
	if n := delivered(); n != 0 {
		t.Fatalf("%d readings sent with no token left", n)
	}
	for i := 1; i <= 3; i++ {
		clk.add(100 * time.Millisecond)
		obs.waitFor(t, 5*time.Second, fmt.Sprintf("message %d", i), func() bool { return len(obs.order) >= i })
		time.Sleep(250 * time.Millisecond)
		if n := delivered(); n != i {
			t.Fatalf("after %d00 ms of limiter time %d messages went out, want %d", i, n, i)
		}
	}
	clk.add(time.Hour)
	obs.waitFor(t, 5*time.Second, "message 4", func() bool { return len(obs.order) >= 4 })
	time.Sleep(250 * time.Millisecond)
	if n := delivered(); n != 4 {
		t.Fatalf("an idle hour let %d messages out at once, want the burst of 1", n-3)
	}
}

// A client certificate close to its end is warned about and reported.
func TestCertExpiryWarning(t *testing.T) {
	b := startBroker(t)
	pair, err := b.CA.Client(kit, time.Now().Add(10*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	buf := openBuffer(t)
	cfg := brokerConfig(b)
	cfg.CertFile, cfg.KeyFile = pair.CertFile, pair.KeyFile
	r := startPublisher(t, cfg, buf, testOptions())
	deadline := time.Now().Add(10 * time.Second)
	for !r.p.Stats().Connected && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(r.log.String(), "client certificate expires soon") || !strings.Contains(r.log.String(), "days_left=9") {
		t.Errorf("no expiry warning:\n%s", r.log.String())
	}
	if got := r.p.Stats().CertExpires; !got.Equal(pair.NotAfter.Truncate(time.Second)) {
		t.Errorf("CertExpires %v, want %v", got, pair.NotAfter)
	}
}
