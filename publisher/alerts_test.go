package publisher

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/telemetry"
)

func appendAlert(t testing.TB, b *buffer.Buffer, name string, state telemetry.AlertState, readingSeq uint64) uint64 {
	t.Helper()
	rec, err := telemetry.MarshalAlert(nil, telemetry.Alert{Name: name, State: state, Sensor: "soil", Quantity: "moisture",
		Value: 31.5, Threshold: 35, ReadingSeq: readingSeq, Time: time.Now(), Boot: 42, Mono: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := b.Append(rec)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// arrivals records, in the broker's order, the topic and payload of
// every message the kit publishes on kits/kit-1/...
type arrivals struct {
	mu   sync.Mutex
	msgs []struct{ topic, payload string }
}

func (a *arrivals) add(topic string, payload []byte) {
	if strings.HasSuffix(topic, "/status") {
		return
	}
	a.mu.Lock()
	a.msgs = append(a.msgs, struct{ topic, payload string }{topic, string(payload)})
	a.mu.Unlock()
}

func (a *arrivals) snapshot() []struct{ topic, payload string } {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]struct{ topic, payload string }(nil), a.msgs...)
}

func mochiConfig(t *testing.T, broker *testkit.Broker) Config {
	kitPair := broker.Client(kit)
	cfg := DefaultConfig()
	cfg.Broker = broker.URL
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = broker.CA.CAFile, kitPair.CertFile, kitPair.KeyFile
	cfg.MaxPublishRate = 0
	return cfg
}

// An alert raised while offline behind a backlog of readings (and one
// raised in the middle of it) is the first thing the kit publishes when it
// connects: alone, on the alert topic, with the wire contract's fields;
// then every reading follows on the telemetry topic, batched, with the
// alerts never inside a batch, and nothing is left pending.
func TestAlertsAheadOfBacklog(t *testing.T) {
	broker := testkit.StartBroker(t, new(kitACL))
	buf := openBuffer(t)
	obs := newCollector(t, buf.Epoch())
	arr := &arrivals{}
	if err := broker.Server.Subscribe("kits/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		arr.add(pk.TopicName, pk.Payload)
		obs.add(pk.TopicName, pk.Payload)
	}); err != nil {
		t.Fatal(err)
	}
	seqs := appendReadings(t, buf, "air", 2000)
	mid := appendAlert(t, buf, "dry-soil", telemetry.AlertFiring, seqs[len(seqs)-1])
	seqs = append(seqs, appendReadings(t, buf, "air", 3000)...)
	last := appendAlert(t, buf, "dry-soil", telemetry.AlertResolved, seqs[len(seqs)-1])

	cfg := mochiConfig(t, broker)
	cfg.Batch.MaxReadings = 50
	r := startPublisher(t, cfg, buf, testOptions())
	obs.waitAll(t, seqs, 30*time.Second)
	waitPending(t, buf, 0)
	r.stop(t)

	msgs := arr.snapshot()
	if len(msgs) < 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	want := []uint64{mid, last}
	for i, m := range msgs[:2] {
		if m.topic != "kits/kit-1/alerts" {
			t.Fatalf("message %d went to %s (%.80s), want the alert topic first", i, m.topic, m.payload)
		}
		var a struct {
			Device, Epoch, Alert, State, Sensor, Quantity, TS string
			Value, Threshold                                  float64
			ReadingSeq                                        uint64 `json:"reading_seq"`
		}
		if err := json.Unmarshal([]byte(m.payload), &a); err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		json.Unmarshal([]byte(m.payload), &raw)
		if _, ok := raw["seq"]; !ok {
			t.Fatalf("no seq in %s", m.payload)
		}
		wantState := []string{"firing", "resolved"}[i]
		if a.Device != kit || a.Epoch != buf.Epoch() || a.Alert != "dry-soil" || a.State != wantState || a.Sensor != "soil" ||
			a.Quantity != "moisture" || a.Value != 31.5 || a.Threshold != 35 {
			t.Errorf("alert %d: %s", i, m.payload)
		}
		if _, err := time.Parse(telemetry.TimeLayout, a.TS); err != nil {
			t.Errorf("ts %q", a.TS)
		}
		if uint64(raw["seq"].(float64)) != want[i] {
			t.Errorf("alert %d seq %v, want %d", i, raw["seq"], want[i])
		}
	}
	alerts := 0
	for _, m := range msgs {
		if strings.HasSuffix(m.topic, "/alerts") {
			alerts++
		} else if strings.Contains(m.payload, `"alert"`) {
			t.Fatalf("an alert inside a telemetry message: %.200s", m.payload)
		}
	}
	if alerts != 2 {
		t.Errorf("%d alert messages, want 2 (no duplicates on a healthy connection)", alerts)
	}
	if dups := obs.check(t, seqs); dups != 0 {
		t.Errorf("%d duplicate readings", dups)
	}
}

// An alert appended while the kit is connected and busy draining a
// backlog overtakes the backlog (it waits for no more than what is
// already packed or in flight).
func TestLiveAlertOvertakesBacklog(t *testing.T) {
	broker := testkit.StartBroker(t, new(kitACL))
	buf := openBuffer(t)
	arr := &arrivals{}
	if err := broker.Server.Subscribe("kits/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		arr.add(pk.TopicName, pk.Payload)
	}); err != nil {
		t.Fatal(err)
	}
	seqs := appendReadings(t, buf, "air", 20000)
	cfg := mochiConfig(t, broker)
	cfg.MaxPublishRate = 100 // one reading a message: the backlog would take 200 s
	cfg.MaxInflight = 1
	r := startPublisher(t, cfg, buf, testOptions())
	testkit.WaitFor(t, 10*time.Second, "the backlog flowing", func() bool { return len(arr.snapshot()) > 10 })
	seq := appendAlert(t, buf, "hot", telemetry.AlertFiring, seqs[0])
	testkit.WaitFor(t, 20*time.Second, "the alert", func() bool {
		for _, m := range arr.snapshot() {
			if strings.HasSuffix(m.topic, "/alerts") {
				return true
			}
		}
		return false
	})
	before := -1
	for i, m := range arr.snapshot() {
		if strings.HasSuffix(m.topic, "/alerts") {
			before = i
			break
		}
	}
	// At the rate limit the backlog has thousands of messages to go: the
	// alert must come long before it ends.
	if before < 0 || before >= len(seqs)/2 {
		t.Fatalf("the alert (seq %d) came after %d of %d backlog messages", seq, before, len(seqs))
	}
	t.Logf("alert after %d of %d backlog messages", before, len(seqs))
	r.stop(t)
}

// Kept across a restart with nothing acknowledged (the buffer closed and
// reopened, as after a kill -9 or a power cut that the sync covered): the
// alert comes first on the next connection.
func TestAlertKeptAcrossRestart(t *testing.T) {
	broker := testkit.StartBroker(t, new(kitACL))
	cfg := buffer.DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.MinFreeBytes = 0
	b1, err := buffer.Open(cfg, buffer.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	appendReadings(t, b1, "air", 100)
	seq := appendAlert(t, b1, "dry-soil", telemetry.AlertFiring, 100)
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := buffer.Open(cfg, buffer.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Close() })
	arr := &arrivals{}
	if err := broker.Server.Subscribe("kits/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		arr.add(pk.TopicName, pk.Payload)
	}); err != nil {
		t.Fatal(err)
	}
	r := startPublisher(t, mochiConfig(t, broker), b2, testOptions())
	waitPending(t, b2, 0)
	r.stop(t)
	msgs := arr.snapshot()
	if len(msgs) != 101 || !strings.HasSuffix(msgs[0].topic, "/alerts") || !strings.Contains(msgs[0].payload, `"seq":`+itoa(seq)+`,`) {
		t.Fatalf("%d messages, first %v", len(msgs), msgs[0])
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }
