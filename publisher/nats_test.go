//go:build nats

package publisher

import (
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/natstest"
)

// natsBroker is a nats-server with MQTT (natstest), started per test: it
// boots in well under a second.
type natsBroker struct{ b *natstest.Broker }

func startNATS(t *testing.T, passwords map[string]string) natsBroker {
	return natsBroker{natstest.Start(t, natstest.Options{Devices: []string{kit}, Passwords: passwords})}
}

func (n natsBroker) kitConfig(t *testing.T) Config {
	c := DefaultConfig()
	c.Broker = n.b.URL
	c.CAFile = n.b.CA.CAFile
	if n.b.Passwords == nil {
		c.CertFile, c.KeyFile = n.b.Certs[kit].CertFile, n.b.Certs[kit].KeyFile
	} else {
		c.Username, c.PasswordFile = kit, writeSecret(t, n.b.Passwords[kit])
	}
	return c
}

func (n natsBroker) observer(t *testing.T) *mqtt.ClientOptions {
	o, err := n.b.ObserverOptions("observer")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (n natsBroker) addr() string       { return n.b.Addr() }
func (n natsBroker) stop()              { n.b.Stop() }
func (n natsBroker) restart(*testing.T) { n.b.Restart() }
func (n natsBroker) log() string        { return n.b.Log() }

func TestNATSOutageBySeq(t *testing.T) { outageBySeq(t, startNATS(t, nil)) }

func TestNATSWillAndStatus(t *testing.T) { willAndStatus(t, startNATS(t, nil)) }

func TestNATSUserAndPassword(t *testing.T) {
	n := startNATS(t, map[string]string{kit: "kit-secret"})
	userAndPassword(t, n, n.kitConfig(t))
}
