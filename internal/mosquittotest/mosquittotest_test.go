//go:build mosquitto

package mosquittotest

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func connect(t *testing.T, b *Broker, id string) (mqtt.Client, error) {
	t.Helper()
	cfg, err := b.CA.ClientTLS(b.Certs[id])
	if err != nil {
		t.Fatal(err)
	}
	o := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID(id).SetTLSConfig(cfg).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("connect timed out")
	}
	return c, tok.Error()
}

// The harness is what every end-to-end test stands on: a kit may use its
// own topics over mTLS, and the observer sees them.
func TestBrokerMutualTLSAndACL(t *testing.T) {
	b := Start(t, Options{Devices: []string{"kit-001"}})
	obs, err := connect(t, b, Observer)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Disconnect(0)
	got := make(chan string, 4)
	tok := obs.Subscribe("kits/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() })
	tok.WaitTimeout(5 * time.Second)
	if tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	kit, err := connect(t, b, "kit-001")
	if err != nil {
		t.Fatal(err)
	}
	kit.Publish("kits/kit-001/telemetry", 1, false, "{}").WaitTimeout(5 * time.Second)
	select {
	case topic := <-got:
		if topic != "kits/kit-001/telemetry" {
			t.Fatalf("topic %s", topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("observer saw nothing")
	}
	kit.Disconnect(0)

	b.Stop()
	if _, err := connect(t, b, "kit-001"); err == nil {
		t.Fatal("connected to a stopped broker")
	}
	b.Restart()
	kit, err = connect(t, b, "kit-001")
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	kit.Disconnect(0)
}
