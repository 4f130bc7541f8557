//go:build mosquitto

package publisher

import (
	"crypto/tls"
	"testing"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
)

// mosquittoExtra lifts Mosquitto's per-client queue limits so the observer
// never loses a message because it fell behind (with the defaults, a QoS 1
// subscriber more than 1000 messages behind silently loses the rest).
const mosquittoExtra = "max_queued_messages 0\nmax_inflight_messages 0\n"

func startBroker(t testing.TB) *mosquittotest.Broker {
	t.Helper()
	return mosquittotest.Start(t, mosquittotest.Options{Devices: []string{kit}, Extra: mosquittoExtra})
}

func brokerConfig(b *mosquittotest.Broker) Config {
	c := DefaultConfig()
	c.Broker = b.URL
	c.CAFile = b.CA.CAFile
	c.CertFile = b.Certs[kit].CertFile
	c.KeyFile = b.Certs[kit].KeyFile
	c.MaxPublishRate = 0
	return c
}

func observeMosquitto(t testing.TB, b *mosquittotest.Broker, epoch string) *collector {
	t.Helper()
	return observe(t, b.URL, observerTLS(t, b), epoch)
}

func observerTLS(t testing.TB, b *mosquittotest.Broker) *tls.Config {
	t.Helper()
	tlsCfg, err := b.CA.ClientTLS(b.Certs[mosquittotest.Observer])
	if err != nil {
		t.Fatal(err)
	}
	return tlsCfg
}
