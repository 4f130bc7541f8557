//go:build !kitd_nodemo

package demo

import (
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kitd-dev/kitd/internal/pki"
)

// broker is the embedded MQTT broker (mochi) on a loopback port, serving
// mutual TLS with the demo's throwaway CA. It is the only file of kitd
// that imports mochi; a build with -tags kitd_nodemo (the release
// binaries, `make cross`) links none of it, nor the rest of the demo
// (mochi's packets package alone allocates 370 KB of tables at start).
type broker struct {
	srv  *mqtt.Server
	addr string
}

func startBroker(ca *pki.CA, srv pki.Pair, log *slog.Logger) (*broker, error) {
	tlsCfg, err := ca.ServerTLS(srv)
	if err != nil {
		return nil, err
	}
	b := mqtt.New(&mqtt.Options{InlineClient: true, Logger: log.With("component", "demo-broker")})
	if err := b.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, err
	}
	l := listeners.NewTCP(listeners.Config{ID: "tls", Address: "127.0.0.1:0", TLSConfig: tlsCfg})
	if err := b.AddListener(l); err != nil {
		return nil, fmt.Errorf("demo broker: %w", err)
	}
	if err := b.Serve(); err != nil {
		return nil, fmt.Errorf("demo broker: %w", err)
	}
	return &broker{srv: b, addr: l.Address()}, nil
}

// Addr is host:port of the TLS listener.
func (b *broker) Addr() string { return b.addr }

// Watch calls fn with every message published on filter, as the broker
// got it (the inline client: no connection of its own).
func (b *broker) Watch(filter string, fn func(topic string, payload []byte)) error {
	return b.srv.Subscribe(filter, 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload)
	})
}

// Unwatch ends a Watch of filter.
func (b *broker) Unwatch(filter string) error { return b.srv.Unsubscribe(filter, 1) }

func (b *broker) Close() error { return b.srv.Close() }
