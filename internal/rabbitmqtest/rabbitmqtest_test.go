//go:build rabbitmq

package rabbitmqtest

import (
	"fmt"
	"os"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

var node *Broker

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rabbitmqtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	start := time.Now()
	node, err = Start(dir, Options{Devices: []string{"kit-001"}, Passwords: map[string]string{"kit-001": "pw-001"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "rabbitmqtest: node up in %v\n", time.Since(start).Round(time.Millisecond))
	code := m.Run()
	node.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// connect logs in with the certificate of id, or (cert false) with user
// id and password pw over TLS without a client certificate.
func connect(t *testing.T, id string, cert bool, pw string) (mqtt.Client, error) {
	t.Helper()
	pair := node.Certs[id]
	if !cert {
		pair = node.Certs[Observer] // only for the CA; the certificate is dropped below
	}
	cfg, err := node.CA.ClientTLS(pair)
	if err != nil {
		t.Fatal(err)
	}
	if !cert {
		cfg.Certificates = nil
	}
	o := mqtt.NewClientOptions().AddBroker(node.URL).SetClientID(id).SetTLSConfig(cfg).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).SetProtocolVersion(4)
	if !cert {
		o.SetUsername(id).SetPassword(pw)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(20 * time.Second) {
		t.Fatal("connect timed out")
	}
	return c, tok.Error()
}

// The harness the publisher's RabbitMQ tests stand on: certificate and
// password logins, a wrong password refused, the observer sees a kit's
// topics, and the node comes back after a kill with its users.
func TestNodeLoginsAndRestart(t *testing.T) {
	obs, err := connect(t, Observer, true, "")
	if err != nil {
		t.Fatalf("observer: %v\n%s", err, node.Log())
	}
	defer obs.Disconnect(0)
	got := make(chan string, 16)
	tok := obs.Subscribe("kits/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() + " " + string(m.Payload()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	for _, c := range []struct {
		name string
		cert bool
		pw   string
	}{{"certificate", true, ""}, {"password", false, "pw-001"}} {
		kit, err := connect(t, "kit-001", c.cert, c.pw)
		if err != nil {
			t.Fatalf("%s login: %v\n%s", c.name, err, node.Log())
		}
		pt := kit.Publish("kits/kit-001/telemetry", 1, false, c.name)
		if !pt.WaitTimeout(10*time.Second) || pt.Error() != nil {
			t.Fatalf("%s publish: %v", c.name, pt.Error())
		}
		select {
		case m := <-got:
			if m != "kits/kit-001/telemetry "+c.name {
				t.Fatalf("observer got %q", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: observer saw nothing", c.name)
		}
		kit.Disconnect(0)
	}
	if _, err := connect(t, "kit-001", false, "wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	node.Stop()
	if _, err := connect(t, "kit-001", true, ""); err == nil {
		t.Fatal("connected to a stopped node")
	}
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	kit, err := connect(t, "kit-001", false, "pw-001")
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	kit.Disconnect(0)
}

// The topic permissions keep a kit to its own topics: RabbitMQ answers a
// publish elsewhere by closing the connection (MQTT 3.1.1 has no refusal
// code for a PUBLISH), as AWS IoT does.
func TestTopicPermissions(t *testing.T) {
	lost := make(chan error, 1)
	pair := node.Certs["kit-001"]
	cfg, err := node.CA.ClientTLS(pair)
	if err != nil {
		t.Fatal(err)
	}
	o := mqtt.NewClientOptions().AddBroker(node.URL).SetClientID("kit-001").SetTLSConfig(cfg).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).SetProtocolVersion(4).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err })
	kit := mqtt.NewClient(o)
	if tok := kit.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer kit.Disconnect(0)
	kit.Publish("kits/kit-002/telemetry", 1, false, "{}")
	select {
	case <-lost:
	case <-time.After(30 * time.Second):
		t.Fatal("a publish to another kit's topic did not end the connection")
	}
}
