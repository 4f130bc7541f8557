package shadow

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/testkit"
)

const kitID = "kit-001"

// pahoConn adapts a bare paho client to Conn the way the publisher's
// Session does: QoS 1, waits bounded by ctx, handlers on goroutines.
type pahoConn struct{ c mqtt.Client }

func (p pahoConn) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	tok := p.c.Publish(topic, 1, retained, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p pahoConn) Subscribe(ctx context.Context, topic string, h func(string, []byte)) error {
	tok := p.c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		go h(m.Topic(), m.Payload())
	})
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recTarget is the scheduler and publisher as the shadow sees them: it
// holds the live values, records calls, and fails on request.
type recTarget struct {
	mu       sync.Mutex
	interval map[string]time.Duration
	enabled  map[string]bool
	batch    int
	calls    []string
	failOn   time.Duration // SetInterval with this value fails
}

func newTarget(sensors map[string]time.Duration, batch int) *recTarget {
	t := &recTarget{interval: map[string]time.Duration{}, enabled: map[string]bool{}, batch: batch}
	for n, d := range sensors {
		t.interval[n] = d
		t.enabled[n] = true
	}
	return t
}

func (t *recTarget) SetInterval(sensor string, d time.Duration) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, fmt.Sprintf("interval %s %s", sensor, d))
	if _, ok := t.interval[sensor]; !ok {
		return fmt.Errorf("unknown sensor %q", sensor)
	}
	if t.failOn != 0 && d == t.failOn {
		return fmt.Errorf("scheduler refused %s", d)
	}
	t.interval[sensor] = d
	return nil
}

func (t *recTarget) SetEnabled(sensor string, on bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, fmt.Sprintf("enabled %s %v", sensor, on))
	if _, ok := t.enabled[sensor]; !ok {
		return fmt.Errorf("unknown sensor %q", sensor)
	}
	t.enabled[sensor] = on
	return nil
}

func (t *recTarget) SetBatchMaxReadings(n int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, fmt.Sprintf("batch %d", n))
	t.batch = n
	return nil
}

type targetSnap struct {
	interval map[string]time.Duration
	enabled  map[string]bool
	batch    int
}

func (t *recTarget) snap() targetSnap {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := targetSnap{interval: map[string]time.Duration{}, enabled: map[string]bool{}, batch: t.batch}
	for k, v := range t.interval {
		s.interval[k] = v
	}
	for k, v := range t.enabled {
		s.enabled[k] = v
	}
	return s
}

func (t *recTarget) intervalOf(s string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.interval[s]
}

func (t *recTarget) callCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}

// liveState is the lead's state func: the Target's values plus what the
// buffer and sensors say, changeable by the test.
type liveState struct {
	target *recTarget
	mu     sync.Mutex
	st     State
}

func (l *liveState) get() State {
	l.mu.Lock()
	st := l.st
	st.Sensors = append([]Sensor(nil), l.st.Sensors...)
	l.mu.Unlock()
	snap := l.target.snap()
	for i := range st.Sensors {
		st.Sensors[i].Interval = snap.interval[st.Sensors[i].Name]
		st.Sensors[i].Enabled = snap.enabled[st.Sensors[i].Name]
	}
	return st
}

func (l *liveState) set(f func(*State)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.st)
}

// kit is one agent's shadow with its target, state and log.
type kit struct {
	t      *testing.T
	s      *Shadow
	target *recTarget
	live   *liveState
	cfg    Config
	logs   *testkit.LockedBuffer
}

// newKit makes a shadow over sensors a (1s) and b (2s), batch 1, its
// state file in dir.
func newKit(t *testing.T, dir string, mod func(*Config)) *kit {
	t.Helper()
	cfg := DefaultConfig()
	cfg.StateFile = filepath.Join(dir, "shadow.json")
	// Long enough that only acknowledgements and connects report, unless
	// a test shortens it.
	cfg.MinReportInterval = time.Hour
	if mod != nil {
		mod(&cfg)
	}
	target := newTarget(map[string]time.Duration{"a": time.Second, "b": 2 * time.Second}, 1)
	live := &liveState{target: target, st: State{
		Agent: Agent{Version: "1.2.3", Arch: "linux/arm", Started: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
			CertExpires: time.Date(2027, 11, 21, 12, 0, 0, 0, time.UTC)},
		Sensors: []Sensor{{Name: "a", Driver: "sim", OK: true}, {Name: "b", Driver: "bme280", OK: false, LastError: "read: timeout"}},
		Buffer:  Buffer{Pending: 3, Bytes: 300, Dropped: 20, DroppedRanges: [][2]uint64{{5, 14}, {40, 49}}},
		MQTT:    MQTT{BatchMaxDelay: time.Minute},
	}}
	logs := &testkit.LockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, Deps{Device: kitID, Sensors: []string{"a", "b"}, BatchMaxReadings: 1, Target: target, State: live.get, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	s.reqTimeout = 3 * time.Second
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kit log:\n%s", logs.String())
		}
	})
	return &kit{t: t, s: s, target: target, live: live, cfg: cfg, logs: logs}
}

// conn is one MQTT connection of a kit, running OnConnect as the
// publisher would.
type conn struct {
	client mqtt.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func dial(t *testing.T, url string, tlsCfg *tls.Config, id string, s *Shadow) *conn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).SetOrderMatters(false).
		SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(mqtt.Client, error) { cancel() })
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		cancel()
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	cn := &conn{client: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(cn.done)
		s.OnConnect(ctx, pahoConn{c})
	}()
	t.Cleanup(cn.close)
	return cn
}

// close ends the connection the way a dropped link does for the shadow:
// the publisher cancels OnConnect's ctx.
func (c *conn) close() {
	c.cancel()
	<-c.done
	c.client.Disconnect(50)
}

// eventually waits for cond as long as a shadow round trip may take.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 15*time.Second, what, cond)
}

// at reads a nested value from a decoded document.
func at(doc map[string]any, path ...string) any {
	var v any = doc
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
