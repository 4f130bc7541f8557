//go:build nats

package natstest

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func connect(t *testing.T, b *Broker, id, user, pw string) (mqtt.Client, error) {
	t.Helper()
	o, err := b.ObserverOptions(id)
	if err != nil {
		t.Fatal(err)
	}
	if b.Passwords != nil {
		o.SetUsername(user).SetPassword(pw)
	} else {
		cfg, err := b.CA.ClientTLS(b.Certs[id])
		if err != nil {
			t.Fatal(err)
		}
		o.SetTLSConfig(cfg)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("connect timed out")
	}
	return c, tok.Error()
}

func roundTrip(t *testing.T, b *Broker, kit mqtt.Client) {
	t.Helper()
	obs, err := connect(t, b, Observer, Observer, ObserverPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Disconnect(0)
	got := make(chan string, 4)
	tok := obs.Subscribe("kits/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if pt := kit.Publish("kits/kit-001/telemetry", 1, false, "{}"); !pt.WaitTimeout(10*time.Second) || pt.Error() != nil {
		t.Fatalf("publish: %v", pt.Error())
	}
	select {
	case topic := <-got:
		if topic != "kits/kit-001/telemetry" {
			t.Fatalf("topic %s", topic)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("observer saw nothing")
	}
}

// Certificates: the subject is the user; a stopped server refuses, and a
// restarted one takes the kit again.
func TestCertificateLoginAndRestart(t *testing.T) {
	b := Start(t, Options{Devices: []string{"kit-001"}})
	kit, err := connect(t, b, "kit-001", "", "")
	if err != nil {
		t.Fatalf("%v\n%s", err, b.Log())
	}
	roundTrip(t, b, kit)
	kit.Disconnect(0)
	b.Stop()
	if _, err := connect(t, b, "kit-001", "", ""); err == nil {
		t.Fatal("connected to a stopped server")
	}
	b.Restart()
	kit, err = connect(t, b, "kit-001", "", "")
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	kit.Disconnect(0)
}

func TestPasswordLogin(t *testing.T) {
	b := Start(t, Options{Devices: []string{"kit-001"}, Passwords: map[string]string{"kit-001": "pw-001"}})
	kit, err := connect(t, b, "kit-001", "kit-001", "pw-001")
	if err != nil {
		t.Fatalf("%v\n%s", err, b.Log())
	}
	roundTrip(t, b, kit)
	kit.Disconnect(0)
	if _, err := connect(t, b, "kit-001", "kit-001", "wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
}
