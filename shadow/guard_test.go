package shadow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	if err := k.s.ReportDisconnected(ctx); err != nil {
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
		t.Fatalf("after ReportDisconnected: connected %v, version %d", d.State.Reported["connected"], d.Version)
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

// A 16 MiB delta is dropped before any decoding: nothing is queued, the
// error names the topic and size, and handling it costs a few
// allocations, not the millions its decoding would.
func TestOversizedMessageDiscardedUnread(t *testing.T) {
	k := newKit(t, t.TempDir(), nil)
	ss := &session{s: k.s, done: make(chan struct{}), sem: make(chan struct{}, maxInFlight),
		events: make(chan event, eventQueue), pending: map[string]pendingReq{}}
	// Valid JSON: an array of eight million numbers, which a decoder
	// would turn into eight million interface values.
	head := `{"version":2,"state":{"sensors":{"a":{"interval":"5s"}},"junk":[0`
	big := append([]byte(head), bytes.Repeat([]byte(",0"), (16<<20-len(head)-3)/2)...)
	big = append(big, "]}}"...)
	if !json.Valid(big) || len(big) < 16<<20-4 {
		t.Fatalf("test payload: %d bytes, valid %v", len(big), json.Valid(big))
	}
	topic := "$aws/things/" + kitID + "/shadow/update/delta"

	ss.handle(topic, big)
	if len(ss.events) != 0 {
		t.Fatal("an oversized delta was queued")
	}
	if !strings.Contains(k.logs.String(), "discarded unread") || !strings.Contains(k.logs.String(), fmt.Sprintf("bytes=%d", len(big))) {
		t.Fatalf("not logged with its size:\n%s", k.logs.String())
	}
	allocs := testing.AllocsPerRun(3, func() { ss.handle(topic, big) })
	if allocs > 100 {
		t.Fatalf("%.0f allocations for a message that must not be decoded", allocs)
	}

	// A reply is dropped the same way, before its clientToken is parsed.
	ch := make(chan reply, 1)
	ss.pending["tok-1"] = pendingReq{op: "get", ch: ch}
	reply := append([]byte(`{"clientToken":"tok-1","state":{},"pad":"`), bytes.Repeat([]byte("x"), maxIncomingBytes)...)
	reply = append(reply, `"}`...)
	ss.handle("$aws/things/"+kitID+"/shadow/get/accepted", reply)
	if len(ch) != 0 {
		t.Fatal("an oversized reply was delivered")
	}

	// The session is not stuck: the next normal delta is queued and applied.
	small := []byte(`{"version":3,"state":{"sensors":{"a":{"interval":"5s"}}}}`)
	ss.handle(topic, small)
	if len(ss.events) != 1 {
		t.Fatal("a normal delta after the oversized one was not queued")
	}
	if rep, reget := k.s.handleEvent(<-ss.events); reget || !rep || k.target.intervalOf("a") != 5*time.Second {
		t.Fatalf("normal delta: report %v, reget %v, a = %s", rep, reget, k.target.intervalOf("a"))
	}
}
