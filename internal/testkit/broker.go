package testkit

import (
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/kitd-dev/kitd/internal/pki"
)

// Broker is the in-process broker `kitd demo` runs (mochi), listening on
// loopback behind mutual TLS from a throwaway CA: clients need a
// certificate from CA, as with AWS IoT Core and Mosquitto in e2e.
type Broker struct {
	t testing.TB
	// Server is the broker itself, for hooks and its inline client.
	Server *mqtt.Server
	CA     *pki.CA
	// URL is tls://127.0.0.1:PORT.
	URL string
}

// StartBroker starts a broker on a free loopback port; t.Cleanup closes
// it. hook decides who may connect and what they may touch; nil lets in
// every client with a certificate from CA and allows everything.
func StartBroker(t testing.TB, hook mqtt.Hook) *Broker {
	t.Helper()
	ca, err := pki.NewCA(filepath.Join(t.TempDir(), "pki"), "testkit CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("broker", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := ca.ServerTLS(srv)
	if err != nil {
		t.Fatal(err)
	}
	// The listener is ours from the start: no free port to find and then
	// lose to another test before the broker binds it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if hook == nil {
		hook = new(auth.AllowHook)
	}
	s := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := s.AddHook(hook, nil); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if err := s.AddListener(listeners.NewNet("mtls", tls.NewListener(ln, srvTLS))); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &Broker{t: t, Server: s, CA: ca, URL: "tls://" + ln.Addr().String()}
}

// Client issues a client certificate with common name cn (for a kit, its
// device id) and returns its files.
func (b *Broker) Client(cn string) pki.Pair {
	b.t.Helper()
	p, err := b.CA.Client(cn, time.Time{})
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

// ClientTLS is a client TLS config with a fresh certificate for cn.
func (b *Broker) ClientTLS(cn string) *tls.Config {
	b.t.Helper()
	c, err := b.CA.ClientTLS(b.Client(cn))
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}
