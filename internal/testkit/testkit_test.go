package testkit

import (
	"crypto/tls"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

func TestLockedBufferConcurrentWriters(t *testing.T) {
	var b LockedBuffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprintf(&b, "w%d\n", i)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
}

// recorder stands in for a test to see what WaitFor reports.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitFor(t *testing.T) {
	n := 0
	WaitFor(t, time.Minute, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}

	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitFor(r, 0, "a condition that never holds", func() bool { return false })
	}()
	<-done
	if !strings.Contains(r.failed, "waiting for a condition that never holds") {
		t.Fatalf("failure %q does not name what it waited for", r.failed)
	}
}

func connect(t *testing.T, url string, tlsCfg *tls.Config) error {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID("c").SetTLSConfig(tlsCfg).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(30 * time.Second) {
		t.Fatal("connect did not finish")
	}
	if tok.Error() == nil {
		c.Disconnect(50)
	}
	return tok.Error()
}

// A client with a certificate from the broker's CA connects and its
// messages reach the inline client; one without a certificate is refused.
func TestBrokerMutualTLS(t *testing.T) {
	b := StartBroker(t, nil)
	got := make(chan string, 1)
	if err := b.Server.Subscribe("kits/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		got <- string(pk.Payload)
	}); err != nil {
		t.Fatal(err)
	}

	o := paho.NewClientOptions().AddBroker(b.URL).SetClientID("kit-1").SetTLSConfig(b.ClientTLS("kit-1")).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect with a certificate: %v", tok.Error())
	}
	defer c.Disconnect(50)
	if tok := c.Publish("kits/kit-1/telemetry", 1, false, "hello"); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case p := <-got:
		if p != "hello" {
			t.Fatalf("got %q", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the message did not reach the broker's inline client")
	}

	noCert := &tls.Config{RootCAs: b.CA.Pool(), ServerName: "127.0.0.1"}
	if err := connect(t, b.URL, noCert); err == nil {
		t.Fatal("a client without a certificate was let in")
	}
}
