package shadow

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/kitd-dev/kitd/pki"
	"github.com/kitd-dev/kitd/shadow/shadowemu"
)

// The in-process broker `kitd demo` uses, with mutual TLS from pki: the
// shadow reports on connect, a desired change is applied and its delta
// cleared.
func TestShadowOverInProcessBroker(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA(filepath.Join(dir, "pki"), "demo CA")
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	b := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(slog.DiscardHandler)})
	if err := b.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.AddListener(listeners.NewTCP(listeners.Config{ID: "tls", Address: addr, TLSConfig: srvTLS})); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.Serve() }()
	t.Cleanup(func() { b.Close() })
	url := fmt.Sprintf("tls://%s", addr)

	client := func(cn string) pki.Pair {
		p, err := ca.Client(cn, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	svcTLS, err := ca.ClientTLS(client("shadow-service"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	emu, err := shadowemu.Start(ctx, url, svcTLS, "shadow-service", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })

	k := newKit(t, dir, nil)
	if err := k.s.ApplyPersisted(); err != nil {
		t.Fatal(err)
	}
	kitTLS, err := ca.ClientTLS(client(kitID))
	if err != nil {
		t.Fatal(err)
	}
	dial(t, url, kitTLS, kitID, k.s)
	eventually(t, "report on connect", func() bool {
		d, ok := emu.Document(kitID, "")
		return ok && d.State.Reported["connected"] == true && at(d.State.Reported, "sensors", "b", "interval") == "2s"
	})
	if err := emu.UpdateDesired(kitID, "", map[string]any{"sensors": map[string]any{"b": map[string]any{"interval": "250ms"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "applied and delta cleared", func() bool {
		d, _ := emu.Document(kitID, "")
		return k.target.intervalOf("b") == 250*time.Millisecond && len(d.State.Delta) == 0 &&
			at(d.State.Reported, "sensors", "b", "interval") == "250ms"
	})
}
