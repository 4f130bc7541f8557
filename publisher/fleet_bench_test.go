//go:build mosquitto

package publisher

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// BenchmarkFleetReconnect is the real-time counterpart of
// TestFleetReconnectSpread: 200 publishers with the production schedule
// (1 s floor, 10 s fast cap, crypto jitter) reach the in-process broker
// through a proxy; the proxy cuts them all and refuses connections for the
// outage (24 s by default, the figure; KITD_FLEET_OUTAGE sets it),
// then lets them back. Reported: the p50, p95 and largest delay between
// the return and each kit's reconnect, and the most reconnects in one
// second. A measurement, not a test: its figures depend on the machine.
func BenchmarkFleetReconnect(b *testing.B) {
	const fleet = 200
	outage := 24 * time.Second
	if v := os.Getenv("KITD_FLEET_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		outage = d
	}
	broker := testkit.StartBroker(b, nil)
	pair := broker.Client("fleet")
	px := startProxy(b, &proxy{target: broker.URL[len("tls://"):]})
	cfg := DefaultConfig()
	cfg.Broker = px.url()
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = broker.CA.CAFile, pair.CertFile, pair.KeyFile
	cfg.MaxPublishRate = 0
	ps := make([]*Publisher, fleet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, fleet)
	defer func() {
		cancel()
		for range fleet {
			<-done
		}
	}()
	for i := range ps {
		p, err := newPublisher(cfg, Deps{Device: fmt.Sprintf("kit-%03d", i), Buffer: openBuffer(b), Clock: newTestClock(true)}, defaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = p
		go func() {
			_ = p.Run(ctx)
			done <- struct{}{}
		}()
	}
	allUp := func() bool {
		for _, p := range ps {
			if !p.Stats().Connected {
				return false
			}
		}
		return true
	}
	b.ResetTimer()
	for range b.N {
		testkit.WaitFor(b, 2*time.Minute, "the fleet connected", allUp)
		px.block()
		testkit.WaitFor(b, 30*time.Second, "the fleet offline", func() bool {
			for _, p := range ps {
				if p.Stats().Connected {
					return false
				}
			}
			return true
		})
		time.Sleep(outage) // the outage itself: what is measured is after it
		back := time.Now()
		px.unblock()
		delays := make([]time.Duration, fleet)
		left := fleet
		for left > 0 && time.Since(back) < 5*time.Minute {
			for i, p := range ps {
				if delays[i] == 0 && p.Stats().Connected {
					delays[i] = time.Since(back)
					left--
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		if left > 0 {
			b.Fatalf("%d kits not back 5 min after the broker", left)
		}
		peak := busiestSecond(delays)
		slices.Sort(delays)
		b.ReportMetric(percentile(delays, 50).Seconds(), "p50-s")
		b.ReportMetric(percentile(delays, 95).Seconds(), "p95-s")
		b.ReportMetric(delays[len(delays)-1].Seconds(), "max-s")
		b.ReportMetric(float64(peak), "busiest-second-kits")
	}
}
