//go:build mosquitto || rabbitmq || nats

package publisher

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// The scenarios every real broker other than Mosquitto runs (RabbitMQ with
// its MQTT plugin, NATS with JetStream): delivery by seq through a broker
// killed and restarted, the Will and the status messages, a user name and
// password. Each broker file says how to reach its broker.

// realBroker is a broker a test started, on its own ports.
type realBroker interface {
	// kitConfig is the kit's mqtt config for the broker (its URL, the CA
	// and the kit's certificate, or a user name and password).
	kitConfig(t *testing.T) Config
	// observer is the observer's connection options.
	observer(t *testing.T) *mqtt.ClientOptions
	addr() string
	stop()
	restart(t *testing.T)
	log() string
}

// writeSecret writes a password file with the permissions key files have.
func writeSecret(t *testing.T, pw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mqtt-password")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ceilings records the largest backoff ceiling the publisher drew from,
// and how many waits it drew (the log folds repeated connect failures).
type ceilings struct {
	mu    sync.Mutex
	max   time.Duration
	draws int
	r     *rand.Rand
}

func (c *ceilings) options(o options) options {
	c.r = rand.New(rand.NewPCG(1, 2))
	o.rand = func(n int64) int64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.max = max(c.max, o.backoffMin+time.Duration(n-1))
		c.draws++
		return c.r.Int64N(n)
	}
	return o
}

func (c *ceilings) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draws
}

func (c *ceilings) largest() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}

// pendingSeqs lists the records the buffer still holds unacknowledged.
func pendingSeqs(t *testing.T, buf *buffer.Buffer) map[uint64]bool {
	t.Helper()
	r := buf.Reader(0, buf.NextSeq())
	out := map[uint64]bool{}
	for {
		recs, err := r.Next(1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, rec := range recs {
			out[rec.Seq] = true
		}
	}
}

// outageBySeq: the kit samples every 20 ms throughout; mid-way the broker
// is killed (SIGKILL) and later restarted. Every seq must arrive. The kit
// reaches the broker through a proxy that refuses connections from the
// kill until the observer has subscribed again (a restarted broker has
// forgotten subscriptions, and a reading it routes to nobody is not
// kitd's loss); and before the kill the test waits for the observer to
// have every reading the broker acknowledged (the broker may be killed
// between its PUBACK and the delivery to the observer: again not kitd's).
// Reconnecting is judged by condition and by the schedule: no wait drawn
// during the outage may exceed the fast cap, however long the broker took
// to come back (RabbitMQ: up to a minute here).
func outageBySeq(t *testing.T, rb realBroker) {
	buf := openBuffer(t)
	px := startProxy(t, &proxy{target: rb.addr()})
	obs := newCollector(t, buf.Epoch())
	obs.subscribeWith(t, rb.observer(t))
	cfg := rb.kitConfig(t)
	cfg.Broker = px.url()
	cfg.MaxPublishRate = 0
	var ceil ceilings
	opt := testOptions()
	opt.backoffMin, opt.backoffFast, opt.backoffMax = 50*time.Millisecond, 500*time.Millisecond, time.Minute
	opt = ceil.options(opt) // last: it reads backoffMin
	r := startPublisher(t, cfg, buf, opt)
	a := startAppender(t, buf, 20*time.Millisecond)

	obs.waitFor(t, 60*time.Second, "first readings", func() bool { return len(obs.order) >= 20 })
	px.block()
	testkit.WaitFor(t, 10*time.Second, "the kit offline", func() bool { return !r.p.Stats().Connected })
	taken := a.taken()
	pending := pendingSeqs(t, buf)
	var acked []uint64
	for _, s := range taken {
		if !pending[s] {
			acked = append(acked, s)
		}
	}
	obs.waitAll(t, acked, 30*time.Second)
	rb.stop()
	failed := ceil.count()
	testkit.WaitFor(t, 30*time.Second, "three failed attempts into the outage", func() bool {
		return ceil.count() >= failed+3
	})
	rb.restart(t)
	obs.subscribeWith(t, rb.observer(t))
	px.unblock()
	testkit.WaitFor(t, 60*time.Second, "the kit back", func() bool { return r.p.Stats().Connected })
	a.halt()
	seqs := a.taken()
	obs.waitAll(t, seqs, 60*time.Second)
	dups := obs.check(t, seqs)
	if dups > 2*cfg.MaxInflight {
		t.Errorf("%d duplicates, more than the in-flight windows of the two cut connections", dups)
	}
	if c := ceil.largest(); c > opt.backoffFast {
		t.Errorf("a backoff ceiling of %v was drawn from, over the %v fast cap", c, opt.backoffFast)
	}
	if st := r.p.Stats(); st.Reconnects < 1 {
		t.Errorf("stats %+v: no reconnect counted", st)
	}
	t.Logf("%d readings through a broker kill and restart, %d duplicates, %d connect failures, largest ceiling %v",
		len(seqs), dups, ceil.count()-failed, ceil.largest())
}

// willAndStatus: connected:true on connect, the Will when the connection
// dies uncleanly, connected:false published by the kit on a clean stop,
// and the retained status for a dashboard that subscribes to the exact
// topic later.
func willAndStatus(t *testing.T, rb realBroker) {
	buf := openBuffer(t)
	px := startProxy(t, &proxy{target: rb.addr()})
	obs := newCollector(t, buf.Epoch())
	obs.subscribeWith(t, rb.observer(t))
	cfg := rb.kitConfig(t)
	cfg.Broker = px.url()
	r := startPublisher(t, cfg, buf, testOptions())
	online := func(n int) func() bool {
		return func() bool {
			k := 0
			for _, s := range obs.status {
				if strings.HasPrefix(s, `{"state":{"reported":{"connected":true}},"ts":"`) {
					k++
				}
			}
			return k >= n
		}
	}
	offline := func(n int) func() bool {
		return func() bool {
			k := 0
			for _, s := range obs.status {
				if s == string(offlinePayload) {
					k++
				}
			}
			return k >= n
		}
	}
	obs.waitFor(t, 60*time.Second, "connected:true", online(1))
	px.block() // no DISCONNECT: the broker publishes the Will
	obs.waitFor(t, 30*time.Second, "the Will (connected:false)", offline(1))
	px.unblock()
	obs.waitFor(t, 60*time.Second, "connected:true again", online(2))
	r.stop(t)
	obs.waitFor(t, 30*time.Second, "connected:false on a clean stop", offline(2))

	// A dashboard subscribing later to the status topic itself gets the
	// retained connected:false.
	got := make(chan string, 4)
	o := rb.observer(t).SetClientID(fmt.Sprintf("dashboard-%d", rand.Int64())).SetCleanSession(true).
		SetAutoReconnect(false).SetProtocolVersion(4)
	cl := mqtt.NewClient(o)
	if tok := cl.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("dashboard connect: %v", tok.Error())
	}
	defer cl.Disconnect(0)
	if tok := cl.Subscribe("kits/"+kit+"/status", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("dashboard subscribe: %v", tok.Error())
	}
	select {
	case s := <-got:
		if s != string(offlinePayload) {
			t.Fatalf("retained status %q, want %s", s, offlinePayload)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no retained status for an exact-topic subscription")
	}
}

// userAndPassword: a kit configured with mqtt.username and
// mqtt.password_file delivers; with a wrong password the broker refuses
// it and the error names the settings to check.
func userAndPassword(t *testing.T, rb realBroker, good Config) {
	buf := openBuffer(t)
	obs := newCollector(t, buf.Epoch())
	obs.subscribeWith(t, rb.observer(t))
	seqs := appendReadings(t, buf, "air", 30)
	r := startPublisher(t, good, buf, testOptions())
	obs.waitAll(t, seqs, 60*time.Second)
	obs.check(t, seqs)
	r.stop(t)

	bad := good
	bad.PasswordFile = writeSecret(t, "not-the-password")
	r = startPublisher(t, bad, openBuffer(t), testOptions())
	testkit.WaitFor(t, 60*time.Second, "the refusal", func() bool {
		return strings.Contains(r.p.Stats().LastError, ErrNotAuthorized.Error())
	})
	if e := r.p.Stats().LastError; !strings.Contains(e, "check mqtt.username and the password in mqtt.password_file "+bad.PasswordFile) {
		t.Errorf("refusal does not name the settings: %s", e)
	}
	if r.log.count("not-the-password") != 0 {
		t.Error("the log holds the password")
	}
}
