package shadow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

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

// When even trimming cannot make the state fit, the kit says so.
func TestOversizedReportLogged(t *testing.T) {
	k := newKit(t, t.TempDir(), nil)
	var sensors []Sensor
	for i := 0; i < 64; i++ {
		n := fmt.Sprintf("%02d", i) + strings.Repeat("n", 62)
		sensors = append(sensors, Sensor{Name: n, Driver: "sim"})
	}
	k.live.set(func(s *State) { s.Sensors = sensors })
	k.s.mu.Lock()
	doc := k.s.buildLocked(k.live.get())
	k.s.mu.Unlock()
	b, _ := json.Marshal(doc)
	if len(b) <= maxReportedBytes {
		t.Fatalf("test state too small: %d bytes", len(b))
	}
	if !strings.Contains(k.logs.String(), "reported state too large") {
		t.Fatalf("not logged:\n%s", k.logs.String())
	}
}
