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

// The password listener takes a user's password and refuses a wrong one,
// while certificate logins go on working beside it.
func TestPasswordListener(t *testing.T) {
	b := Start(t, Options{Devices: []string{"kit-001"}, Passwords: map[string]string{"kit-001": "pw-001"}})
	login := func(pw string) error {
		cfg, err := b.CA.ClientTLS(b.Certs[Observer])
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = nil
		o := mqtt.NewClientOptions().AddBroker(b.PasswordURL).SetClientID("kit-001").SetTLSConfig(cfg).
			SetUsername("kit-001").SetPassword(pw).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatal("connect timed out")
		}
		if tok.Error() == nil {
			c.Disconnect(0)
		}
		return tok.Error()
	}
	if err := login("pw-001"); err != nil {
		t.Fatalf("password login: %v\n%s", err, b.Log())
	}
	if err := login("wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	c, err := connect(t, b, "kit-001")
	if err != nil {
		t.Fatalf("certificate login beside the password listener: %v\n%s", err, b.Log())
	}
	c.Disconnect(0)
}
