package shadow

import (
	"context"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/shadowemu"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// The in-process broker `kitd demo` uses, with mutual TLS from pki: the
// shadow reports on connect, a desired change is applied and its delta
// cleared.
func TestShadowOverInProcessBroker(t *testing.T) {
	dir := t.TempDir()
	broker := testkit.StartBroker(t, nil)
	url := broker.URL
	svcTLS := broker.ClientTLS("shadow-service")
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
	kitTLS := broker.ClientTLS(kitID)
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
