//go:build mosquitto

package publisher

import (
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// mosquittoBroker runs the shared real-broker scenarios on Mosquitto; with
// passwords, kits log in on its password listener.
type mosquittoBroker struct {
	b        *mosquittotest.Broker
	password string
}

func startMosquittoFor(t *testing.T, password string) mosquittoBroker {
	opts := mosquittotest.Options{Devices: []string{kit}, Extra: mosquittoExtra}
	if password != "" {
		opts.Passwords = map[string]string{kit: password}
	}
	return mosquittoBroker{b: mosquittotest.Start(t, opts), password: password}
}

func (m mosquittoBroker) kitConfig(t *testing.T) Config {
	c := brokerConfig(m.b)
	if m.password != "" {
		c.Broker = m.b.PasswordURL
		c.CertFile, c.KeyFile = "", ""
		c.Username, c.PasswordFile = kit, writeSecret(t, m.password)
	}
	return c
}

func (m mosquittoBroker) observer(t *testing.T) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().AddBroker(m.b.URL).SetTLSConfig(observerTLS(t, m.b)).SetConnectTimeout(10 * time.Second)
}

func (m mosquittoBroker) addr() string         { return m.b.Addr() }
func (m mosquittoBroker) stop()                { m.b.Stop() }
func (m mosquittoBroker) restart(t *testing.T) { m.b.Restart() }
func (m mosquittoBroker) log() string          { return m.b.Log() }

func TestMosquittoWillAndStatus(t *testing.T) { willAndStatus(t, startMosquittoFor(t, "")) }

func TestMosquittoUserAndPassword(t *testing.T) {
	m := startMosquittoFor(t, "kit-secret")
	userAndPassword(t, m, m.kitConfig(t))
}

// Fast flaps: the link is cut a moment after every connect, a dozen times.
// No connection lives long enough to reset the ceiling's steps (30 s), but
// each restarts the 10-minute fast window, so no wait is drawn above the
// fast cap; before, the ceiling doubled on every flap to the 2 min cap.
func TestFastFlapsKeepPausesShort(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	px := newRawProxy(t, b)
	cfg := brokerConfig(b)
	cfg.Broker = px.url()
	var ceil ceilings
	opt := testOptions()
	opt.backoffMin, opt.backoffFast, opt.backoffMax = 20*time.Millisecond, 200*time.Millisecond, time.Minute
	opt = ceil.options(opt) // last: it reads backoffMin
	r := startPublisher(t, cfg, buf, opt)
	for i := range 12 {
		testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("connect %d", i+1), func() bool { return r.p.Stats().Connected })
		px.cutAll()
		testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("loss %d", i+1), func() bool { return !r.p.Stats().Connected })
	}
	testkit.WaitFor(t, 30*time.Second, "connected after the flaps", func() bool { return r.p.Stats().Connected })
	if c := ceil.largest(); c > opt.backoffFast {
		t.Fatalf("after 12 flaps a wait was drawn under a %v ceiling, over the %v fast cap", c, opt.backoffFast)
	}
	if n := ceil.count(); n < 12 {
		t.Fatalf("%d waits drawn for 12 flaps", n)
	}
}
