//go:build mosquitto

package shadow

import (
	"context"
	"strings"
	"testing"
	"time"
)

// After a takeover the old connection's Last Will can reach the status
// rule after the new connection's connected:true. The kit sees the shadow
// say connected:false while it is connected, and says true again.
func TestLateWillReassertsConnected(t *testing.T) {
	e := newEnv(t)
	// What deploy/aws does on AWS: status messages become shadow updates.
	if err := e.emu.MirrorStatus("kits/+/status"); err != nil {
		t.Fatal(err)
	}
	docs := e.spy("$aws/things/" + kitID + "/shadow/update/documents")
	k := newKit(t, e.dir, nil)
	e.connect(k)
	e.synced(k)
	v := e.doc("").Version

	// The old connection's Will, late.
	e.publish("kits/"+kitID+"/status", map[string]any{"state": map[string]any{"reported": map[string]any{"connected": false}}})
	eventually(t, "the late Will applied to the shadow", func() bool {
		return len(docs.matching(func(m spyMsg) bool {
			return at(m.payload, "current", "state", "reported", "connected") == false
		})) > 0
	})
	eventually(t, "connected:true reported again", func() bool {
		d := e.doc("")
		return d.Version > v+1 && d.State.Reported["connected"] == true
	})
	if !strings.Contains(k.logs.String(), "reporting connected:true") {
		t.Errorf("re-assert not logged:\n%s", k.logs.String())
	}
}

// Once the kit reported connected:false on its way out, a stale status
// does not make it claim to be connected.
func TestNoReassertWhileClosing(t *testing.T) {
	e := newEnv(t)
	if err := e.emu.MirrorStatus("kits/+/status"); err != nil {
		t.Fatal(err)
	}
	k := newKit(t, e.dir, nil)
	e.connect(k)
	e.synced(k)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	v := e.doc("").Version
	// Any update the kit still sees (here: a desired change) must not
	// bring connected back.
	if err := e.emu.UpdateDesired(kitID, "", map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "60s"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "desired applied", func() bool { return k.target.intervalOf("a") == time.Minute })
	if d := e.doc(""); d.State.Reported["connected"] != false || d.Version < v+1 {
		t.Fatalf("after Shutdown: connected %v, version %d", d.State.Reported["connected"], d.Version)
	}
}

// A delta whose version is far ahead of anything the service sent (a
// forged one) is not believed: the kit gets the document again, and the
// real deltas after it apply as before.
func TestVersionJumpGetsDocumentAgain(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, nil)
	e.connect(k)
	e.synced(k)
	v := e.doc("").Version
	gets := e.spy("$aws/things/" + kitID + "/shadow/get/accepted")

	e.publish("$aws/things/"+kitID+"/shadow/update/delta", map[string]any{
		"version": v + 1e12, "timestamp": 1,
		"state": map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "7s"}}},
	})
	eventually(t, "the document got again", func() bool { return len(gets.matching(func(spyMsg) bool { return true })) > 0 })
	if !strings.Contains(k.logs.String(), "delta version jumped far ahead") {
		t.Fatalf("jump not logged:\n%s", k.logs.String())
	}
	// A forged documents message as well.
	e.publish("$aws/things/"+kitID+"/shadow/update/documents", map[string]any{
		"previous": map[string]any{"version": v + 2e12, "state": map[string]any{}},
		"current":  map[string]any{"version": v + 2e12 + 1, "state": map[string]any{"desired": map[string]any{"mqtt": map[string]any{"batch": map[string]any{"max_readings": 7}}}}},
	})
	eventually(t, "the document got again", func() bool { return len(gets.matching(func(spyMsg) bool { return true })) > 1 })

	if err := e.emu.UpdateDesired(kitID, "", map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "60s"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the real delta applied", func() bool { return k.target.intervalOf("a") == time.Minute })
	eventually(t, "delta cleared", func() bool { return len(e.doc("").State.Delta) == 0 })
	if got := k.target.snap().batch; got != 1 {
		t.Fatalf("forged documents applied: batch %d", got)
	}
}
