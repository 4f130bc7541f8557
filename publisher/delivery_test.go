//go:build mosquitto

package publisher

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/datasize"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/telemetry"
)

func TestDeliverToMosquitto(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	seqs := appendReadings(t, buf, "air", 200) // a backlog before connecting

	r := startPublisher(t, brokerConfig(b), buf, testOptions())
	seqs = append(seqs, appendReadings(t, buf, "soil", 300)...) // and live ones
	obs.waitAll(t, seqs, 20*time.Second)
	if dups := obs.check(t, seqs); dups != 0 {
		t.Errorf("%d duplicates on a healthy connection", dups)
	}
	waitPending(t, buf, 0)

	st := r.p.Stats()
	if !st.Connected || st.Delivered != int64(len(seqs)) || st.Messages != int64(len(seqs)) || st.Reconnects != 0 {
		t.Errorf("stats %+v, want connected with %d delivered in as many messages", st, len(seqs))
	}
	if st.CertExpires.IsZero() || time.Until(st.CertExpires) < 300*24*time.Hour {
		t.Errorf("CertExpires %v", st.CertExpires)
	}
	if !obs.sawStatus(`{"state":{"reported":{"connected":true}},"ts":"`) {
		t.Errorf("no connected:true status; got %q", obs.statuses())
	}
	for _, s := range obs.statuses() {
		if strings.Contains(s, `"connected":true`) {
			var m struct {
				State struct {
					Reported struct {
						Connected bool `json:"connected"`
					} `json:"reported"`
				} `json:"state"`
				TS string `json:"ts"`
			}
			if err := json.Unmarshal([]byte(s), &m); err != nil || !m.State.Reported.Connected {
				t.Errorf("status %q: %v", s, err)
			}
			if _, err := time.Parse(telemetry.TimeLayout, m.TS); err != nil {
				t.Errorf("status ts %q: %v", m.TS, err)
			}
		}
	}
	// Idle and connected, the loop still shows progress.
	mark := time.Now()
	testkit.WaitFor(t, 10*time.Second, "progress while idle and connected", func() bool { return r.p.Progress().After(mark) })
	r.stop(t)
	if r.p.Stats().Connected {
		t.Error("still connected after Run returned")
	}
}

func TestBatchesByCountAndBytes(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())

	cfg := brokerConfig(b)
	cfg.Batch.MaxReadings = 7
	seqs := appendReadings(t, buf, "air", 100)
	r := startPublisher(t, cfg, buf, testOptions())
	obs.waitAll(t, seqs, 20*time.Second)
	obs.check(t, seqs)
	obs.mu.Lock()
	for _, m := range obs.messages {
		if len(m.Readings) == 0 || len(m.Readings) > 7 {
			t.Errorf("batch of %d readings, want 1..7", len(m.Readings))
		}
	}
	if len(obs.messages) != 15 { // 14 full batches and one of 2
		t.Errorf("%d messages for 100 readings at 7 per batch, want 15", len(obs.messages))
	}
	obs.mu.Unlock()

	// Now by bytes: a 1KiB limit holds only a few readings whatever the count.
	r.stop(t)
	cfg.Batch.MaxBytes = 1 * datasize.KiB
	cfg.Batch.MaxReadings = 1000
	obs.mu.Lock()
	before := len(obs.messages)
	obs.mu.Unlock()
	seqs2 := appendReadings(t, buf, "soil", 100)
	startPublisher(t, cfg, buf, testOptions())
	obs.waitAll(t, seqs2, 20*time.Second)
	obs.check(t, seqs2)
	obs.mu.Lock()
	defer obs.mu.Unlock()
	full := 0
	for i, m := range obs.messages[before:] {
		size := obs.sizes[before+i]
		if size > 1024 {
			t.Errorf("message of %d bytes over max_bytes 1KiB", size)
		}
		if size > 1024-200 {
			full++
		}
		if len(m.Readings) < 1 {
			t.Errorf("not a batch: %+v", m)
		}
	}
	if full < len(obs.messages[before:])-2 {
		t.Errorf("only %d of %d batches were packed close to 1KiB", full, len(obs.messages[before:]))
	}
}
