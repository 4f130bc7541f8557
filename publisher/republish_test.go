package publisher

import (
	"context"
	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/telemetry"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// Republish sends records of a ReplayReader again, acknowledged ones
// included, in batches as configured, and is refused while offline.
func TestRepublish(t *testing.T) {
	p, buf, obs := newRepublisher(t)
	if _, err := p.Republish(context.Background(), nil); err != ErrOffline {
		t.Fatalf("offline: %v", err)
	}
	seqs := appendReadings(t, buf, "air", 40)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	obs.waitAll(t, seqs, 20*time.Second)
	waitPending(t, buf, 0)

	recs, err := buf.ReplayReader(seqs[10], seqs[30]+1).Next(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 21 {
		t.Fatalf("replay read %d records", len(recs))
	}
	testkit.WaitFor(t, 10*time.Second, "connected", func() bool { return p.session.Load() != nil })
	res, err := p.Republish(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sent) != 21 || res.Sent[0] != seqs[10] || len(res.Skipped) != 0 {
		t.Fatalf("sent %v skipped %v", res.Sent, res.Skipped)
	}
	obs.waitFor(t, 10*time.Second, "the range twice", func() bool {
		for _, s := range seqs[10:31] {
			if obs.count[s] < 2 {
				return false
			}
		}
		return true
	})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	for _, s := range append(seqs[:10], seqs[31:]...) {
		if obs.count[s] != 1 {
			t.Errorf("seq %d outside the range received %d times", s, obs.count[s])
		}
	}
}

// An alert record in a resent range goes alone on the alert topic, as the
// drain sends it, never packed into a telemetry batch.
func TestRepublishSendsAlertsAlone(t *testing.T) {
	p, buf, obs := newRepublisher(t)
	seqs := appendReadings(t, buf, "air", 3)
	alert := appendAlert(t, buf, "dry", telemetry.AlertFiring, seqs[2])
	seqs = append(seqs, appendReadings(t, buf, "air", 3)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	alertTopic := "kits/" + kit + "/alerts"
	obs.waitAll(t, seqs, 20*time.Second)
	obs.waitFor(t, 10*time.Second, "the alert", func() bool { return len(obs.other[alertTopic]) == 1 })
	waitPending(t, buf, 0)

	recs, err := buf.ReplayReader(seqs[0], seqs[len(seqs)-1]+1).Next(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Republish(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sent) != 7 || len(res.Skipped) != 0 {
		t.Fatalf("sent %v skipped %v", res.Sent, res.Skipped)
	}
	// The broker hands messages to its subscriber after the PUBACK:
	// wait for them rather than count at once.
	obs.waitFor(t, 10*time.Second, "the alert and every reading again", func() bool {
		if len(obs.other[alertTopic]) != 2 {
			return false
		}
		for _, s := range seqs {
			if obs.count[s] < 2 {
				return false
			}
		}
		return true
	})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.count[alert] != 0 || len(obs.bad) != 0 {
		t.Fatalf("the alert (seq %d) went on the telemetry topic %d times; bad %v", alert, obs.count[alert], obs.bad)
	}
	for _, s := range seqs {
		if obs.count[s] != 2 {
			t.Errorf("seq %d received %d times, want 2", s, obs.count[s])
		}
	}
}

// newRepublisher is a publisher (batches of 7, no rate limit) for the
// in-process broker, not yet running, with an observer of kits/#.
func newRepublisher(t *testing.T) (*Publisher, *buffer.Buffer, *collector) {
	t.Helper()
	broker := testkit.StartBroker(t, new(kitACL))
	kitPair := broker.Client(kit)
	buf := openBuffer(t)
	obs := newCollector(t, buf.Epoch())
	if err := broker.Server.Subscribe("kits/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		obs.add(pk.TopicName, pk.Payload)
	}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Broker = broker.URL
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = broker.CA.CAFile, kitPair.CertFile, kitPair.KeyFile
	cfg.MaxPublishRate = 0
	cfg.Batch.MaxReadings = 7
	p, err := newPublisher(cfg, Deps{Device: kit, Buffer: buf, Clock: newTestClock(true)}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	return p, buf, obs
}
