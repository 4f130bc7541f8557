//go:build mosquitto

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// alertWatcher records the alert messages on kits/+/alerts by seq.
type alertWatcher struct {
	mu        sync.Mutex
	telemetry int               // telemetry messages seen
	bySeq     map[uint64]string // seq -> state
	order     []string
	errors    []string
}

func watchAlerts(t *testing.T, b *mosquittotest.Broker) *alertWatcher {
	t.Helper()
	w := &alertWatcher{bySeq: map[uint64]string{}}
	tlsCfg, err := b.CA.ClientTLS(b.Certs[mosquittotest.Observer])
	if err != nil {
		t.Fatal(err)
	}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL).SetClientID("alerts-" + t.Name()).
		SetTLSConfig(tlsCfg).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe("kits/+/alerts", 1, func(_ mqtt.Client, m mqtt.Message) {
		var a struct {
			Alert, State, Sensor, Quantity, TS string
			Seq                                *uint64
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if err := json.Unmarshal(m.Payload(), &a); err != nil || a.Seq == nil || a.Alert == "" || a.TS == "" || a.Sensor == "" {
			w.errors = append(w.errors, string(m.Payload()))
			return
		}
		w.bySeq[*a.Seq] = a.State
		w.order = append(w.order, fmt.Sprintf("%d:%s", *a.Seq, a.State))
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	tok = c.Subscribe("kits/+/telemetry", 1, func(mqtt.Client, mqtt.Message) {
		w.mu.Lock()
		w.telemetry++
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	return w
}

// distinct counts the distinct alert messages (by seq: a re-delivery
// after a kill is the same message) in each state.
func (w *alertWatcher) distinct() (firing, resolved int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.bySeq {
		switch s {
		case "firing":
			firing++
		case "resolved":
			resolved++
		}
	}
	return
}

// An alert raised while the broker is unreachable survives a kill -9 and
// is delivered once the broker is there; the restarted kit, its condition
// still holding, raises no second firing; killed again and restarted with
// a threshold the value no longer passes, it sends the resolved.
func TestAlertAcrossOutageAndKill(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	w := watchAlerts(t, b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "tls://" + ln.Addr().String()
	ln.Close()
	k := newKit(t, b, "kit-001", kitOptions{sensors: simSensors(1, "100ms"), brokerURL: down})
	cfg, _ := os.ReadFile(k.cfg)
	rule := "alerts:\n  - { name: hot, sensor: sim-0, quantity: temperature, above: -100, hysteresis: 1, for: 500ms }\n"
	write := func(s string) {
		if err := os.WriteFile(k.cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(string(cfg) + rule)

	end := k.run()
	testkit.WaitFor(t, 20*time.Second, "the alert raised offline", func() bool {
		return strings.Contains(k.logText(), "alert=hot state=firing")
	})
	end(true)

	online := strings.Replace(string(cfg), down, b.URL, 1)
	write(online + rule)
	end = k.run()
	testkit.WaitFor(t, 30*time.Second, "the alert delivered", func() bool { f, _ := w.distinct(); return f >= 1 })
	// Let the still-hot readings run past `for` several times over:
	// 5 s of readings at 100 ms, delivered.
	w.mu.Lock()
	seen := w.telemetry
	w.mu.Unlock()
	testkit.WaitFor(t, 30*time.Second, "50 readings after the restart", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.telemetry >= seen+50
	})
	end(true)
	if strings.Count(k.logText(), "alert=hot state=firing") != 1 {
		t.Fatalf("the restart raised the alert again:\n%s", k.logText())
	}

	write(online + strings.Replace(rule, "above: -100", "above: 1000", 1))
	end = k.run()
	testkit.WaitFor(t, 30*time.Second, "the resolved alert", func() bool { _, r := w.distinct(); return r == 1 })
	end(false)
	if f, r := w.distinct(); f != 1 || r != 1 {
		w.mu.Lock()
		t.Fatalf("distinct alerts: %d firing, %d resolved, want 1 and 1; arrivals %v", f, r, w.order)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errors) > 0 {
		t.Fatalf("alert messages missing wire fields: %v", w.errors)
	}
}
