//go:build mosquitto

package publisher

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/datasize"
	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/telemetry"
)

// smallPacketBroker is a Mosquitto that closes the connection of any client
// sending a packet over 2 KiB, as a self-hosted broker with max_packet_size
// does: the message is never acknowledged and nothing else is said.
func smallPacketBroker(t *testing.T) *mosquittotest.Broker {
	return mosquittotest.Start(t, mosquittotest.Options{Devices: []string{kit}, Extra: mosquittoExtra + "max_packet_size 2048\n"})
}

// TestBatchesShrinkForSmallPacketLimit: batches over the broker's packet
// limit must not stall delivery forever: the publisher learns to pack
// smaller messages, every reading arrives, and the log names the size, not
// an AWS policy.
func TestBatchesShrinkForSmallPacketLimit(t *testing.T) {
	b := smallPacketBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	seqs := appendReadings(t, buf, "air", 5) // small messages first: sizes the broker takes
	cfg := brokerConfig(b)
	cfg.Batch.MaxReadings = 100
	r := startPublisher(t, cfg, buf, testOptions())
	sink := r.log
	obs.waitAll(t, seqs, 20*time.Second)
	seqs = append(seqs, appendReadings(t, buf, "air", 300)...) // ~100 B each: 30 KB batches
	obs.waitAll(t, seqs, 60*time.Second)
	obs.check(t, seqs)
	r.stop(t)
	if !strings.Contains(sink.String(), "maximum packet size") || strings.Contains(sink.String(), "policy does not allow") {
		t.Fatalf("the log does not name the size limit, or blames a policy:\n%s", sink.String())
	}
	if buf.Stats().Dropped != 0 {
		t.Fatalf("readings dropped although every one fits alone: %+v", buf.Stats())
	}
}

// TestOversizedReadingDiscarded: a single reading the broker will never
// take is discarded after a few connections, explained in band as
// discarded, and the readings after it are delivered.
func TestOversizedReadingDiscarded(t *testing.T) {
	b := smallPacketBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	seqs := appendReadings(t, buf, "air", 3)
	big := telemetry.Reading{Sensor: "wide", Time: time.Now(), Values: map[string]float64{}}
	for i := 0; i < 120; i++ {
		big.Values[fmt.Sprintf("quantity_%03d", i)] = float64(i)
	}
	rec, err := telemetry.MarshalRecord(nil, big)
	if err != nil {
		t.Fatal(err)
	}
	bigSeq, err := buf.Append(rec)
	if err != nil {
		t.Fatal(err)
	}
	seqs = append(seqs, appendReadings(t, buf, "air", 3)...)
	cfg := brokerConfig(b)
	cfg.Batch.MaxBytes = 8 * datasize.KiB
	r := startPublisher(t, cfg, buf, testOptions())
	sink := r.log
	obs.waitAll(t, seqs, 60*time.Second)
	obs.waitFor(t, 20*time.Second, "a gap record for the oversized reading", func() bool { return obs.gaps[bigSeq] == "discarded" })
	r.stop(t)
	if !strings.Contains(sink.String(), "discarding the reading") {
		t.Fatalf("no log line for the discarded reading:\n%s", sink.String())
	}
	if st := buf.Stats(); st.Lost["discarded"] != 1 {
		t.Fatalf("want exactly the oversized reading discarded: %+v", st)
	}
}

// TestMaxPacketBytes: with mqtt.max_packet_bytes set to the broker's limit,
// no message crosses it and no connection is lost.
func TestMaxPacketBytes(t *testing.T) {
	b := smallPacketBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	seqs := appendReadings(t, buf, "air", 300)
	cfg := brokerConfig(b)
	cfg.Batch.MaxReadings = 100
	cfg.MaxPacketBytes = 2048
	r := startPublisher(t, cfg, buf, testOptions())
	obs.waitAll(t, seqs, 30*time.Second)
	obs.check(t, seqs)
	st := r.p.Stats()
	r.stop(t)
	if st.Reconnects != 0 {
		t.Fatalf("%d reconnects with max_packet_bytes at the broker's limit", st.Reconnects)
	}
	for _, n := range obs.sizes {
		if n+len("kits/"+kit+"/telemetry")+9 > 2048 {
			t.Fatalf("a message of %d bytes crosses the 2048-byte packet limit", n)
		}
	}
}
