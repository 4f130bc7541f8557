//go:build mosquitto

package publisher

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
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
