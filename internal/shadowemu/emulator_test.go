package shadowemu

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/testkit"
)

const thing = "kit-001"

// client is a kit talking to the emulator with raw MQTT, recording every
// reply on its shadow topics.
type client struct {
	t  *testing.T
	c  mqtt.Client
	mu sync.Mutex
	in []msg
}

type msg struct {
	topic string
	body  map[string]any
	raw   string
}

func setup(t *testing.T) (*Emulator, *client) {
	t.Helper()
	b := testkit.StartBroker(t, nil)
	obs := b.ClientTLS("shadow-service")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := Start(ctx, b.URL, obs, "shadow-service", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	kit := b.ClientTLS(thing)
	o := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID(thing).SetTLSConfig(kit).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := &client{t: t, c: mqtt.NewClient(o)}
	if tok := c.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.c.Disconnect(50) })
	tok := c.c.Subscribe("$aws/things/"+thing+"/shadow/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		var body map[string]any
		_ = json.Unmarshal(m.Payload(), &body)
		c.mu.Lock()
		c.in = append(c.in, msg{m.Topic(), body, string(m.Payload())})
		c.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return e, c
}

func (c *client) send(topic, payload string) {
	c.t.Helper()
	if tok := c.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		c.t.Fatalf("publish: %v", tok.Error())
	}
}

// wait returns the first message on a topic ending in suffix with
// clientToken tok ("" matches any).
func (c *client) wait(suffix, tok string) msg {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, m := range c.in {
			if strings.HasSuffix(m.topic, suffix) && (tok == "" || m.body["clientToken"] == tok) {
				c.mu.Unlock()
				return m
			}
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("no %s with token %q; got %v", suffix, tok, c.all())
	return msg{}
}

// nth waits for the i-th (from 0) message on a topic ending in suffix.
func (c *client) nth(suffix string, i int) msg {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		n := 0
		for _, m := range c.in {
			if strings.HasSuffix(m.topic, suffix) {
				if n == i {
					c.mu.Unlock()
					return m
				}
				n++
			}
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("no message %d on %s; got %v", i, suffix, c.all())
	return msg{}
}

func (c *client) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.in {
		out = append(out, m.topic+" "+m.raw)
	}
	return out
}

func (c *client) count(suffix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.in {
		if strings.HasSuffix(m.topic, suffix) {
			n++
		}
	}
	return n
}

const prefix = "$aws/things/" + thing + "/shadow"

func TestGetMissingIs404(t *testing.T) {
	_, c := setup(t)
	c.send(prefix+"/get", `{"clientToken":"t1"}`)
	m := c.wait("/get/rejected", "t1")
	if m.body["code"] != float64(404) || m.body["message"] != "No shadow exists with name: 'kit-001'" {
		t.Fatalf("rejection %s", m.raw)
	}
	if _, ok := m.body["timestamp"].(float64); !ok {
		t.Fatalf("no timestamp: %s", m.raw)
	}
}

func TestUpdateDeltaDocumentsAndGet(t *testing.T) {
	e, c := setup(t)
	c.send(prefix+"/update", `{"state":{"reported":{"color":"green","cfg":{"n":5,"s":"x"}}},"clientToken":"r1"}`)
	acc := c.wait("/update/accepted", "r1")
	if acc.body["version"] != float64(1) || at(acc.body, "metadata", "reported", "cfg", "n", "timestamp") == nil {
		t.Fatalf("accepted %s", acc.raw)
	}
	docs := c.wait("/update/documents", "r1")
	if _, ok := docs.body["previous"]; ok {
		t.Fatalf("a new document has a previous: %s", docs.raw)
	}
	if c.count("/update/delta") != 0 {
		t.Fatal("delta without a desired state")
	}

	// Desired as a cloud app sets it: 5.0 equals 5, so only s and color differ.
	if err := e.UpdateDesired(thing, "", map[string]any{"color": "red", "cfg": map[string]any{"n": 5.0, "s": "y"}}); err != nil {
		t.Fatal(err)
	}
	delta := c.wait("/update/delta", "")
	if delta.body["version"] != float64(2) {
		t.Fatalf("delta %s", delta.raw)
	}
	if got, _ := json.Marshal(delta.body["state"]); string(got) != `{"cfg":{"s":"y"},"color":"red"}` {
		t.Fatalf("delta state %s", got)
	}
	if at(delta.body, "metadata", "cfg", "s", "timestamp") == nil {
		t.Fatalf("delta metadata %s", delta.raw)
	}

	// Null deletes; emptied objects go.
	c.send(prefix+"/update", `{"state":{"reported":{"color":"red","cfg":{"s":null,"n":null}}},"clientToken":"r2"}`)
	c.wait("/update/accepted", "r2")
	d, ok := e.Document(thing, "")
	if !ok || d.Version != 3 {
		t.Fatalf("document %+v", d)
	}
	if _, ok := d.State.Reported["cfg"]; ok {
		t.Fatalf("emptied object kept: %v", d.State.Reported)
	}
	if got, _ := json.Marshal(d.State.Delta); string(got) != `{"cfg":{"n":5,"s":"y"}}` {
		t.Fatalf("delta in document %s", got)
	}
	docs = c.wait("/update/documents", "r2")
	if at(docs.body, "previous", "version") != float64(2) || at(docs.body, "current", "version") != float64(3) ||
		at(docs.body, "previous", "state", "reported", "cfg", "s") != "x" {
		t.Fatalf("documents %s", docs.raw)
	}

	c.send(prefix+"/get", `{"clientToken":"g1"}`)
	g := c.wait("/get/accepted", "g1")
	if g.body["version"] != float64(3) || at(g.body, "state", "desired", "color") != "red" ||
		at(g.body, "state", "delta", "cfg", "s") != "y" || at(g.body, "metadata", "desired", "color", "timestamp") == nil {
		t.Fatalf("get %s", g.raw)
	}
}

func TestRejections(t *testing.T) {
	e, c := setup(t)
	c.send(prefix+"/update", `{"state":{"reported":{"a":1}},"clientToken":"ok"}`)
	c.wait("/update/accepted", "ok")

	cases := []struct {
		body, msg string
		code      float64
	}{
		{`{"state":`, "Invalid JSON", 400},
		{`[1]`, "Invalid JSON", 400},
		{`{"clientToken":"c3"}`, "Missing required node: state", 400},
		{`{"state":5,"clientToken":"c4"}`, "State node must be an object", 400},
		{`{"state":{"desired":[1]},"clientToken":"c5"}`, "Desired node must be an object", 400},
		{`{"state":{"delta":{}},"clientToken":"c6"}`, "State contains an invalid node", 400},
		{`{"state":{"reported":{"a":2}},"version":7,"clientToken":"c7"}`, "Version conflict", 409},
		{`{"state":{"reported":{"big":"` + strings.Repeat("x", 8200) + `"}},"clientToken":"c8"}`, "The payload exceeds the maximum size allowed", 413},
		{`{"state":{"reported":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}},"clientToken":"c9"}`, "JSON contains too many levels of nesting; maximum is 6", 400},
		{`{"state":{"reported":{}},"clientToken":"` + strings.Repeat("t", 65) + `"}`, "Invalid clientToken", 400},
	}
	for i, tc := range cases {
		c.send(prefix+"/update", tc.body)
		m := c.nth("/update/rejected", i)
		if m.body["code"] != tc.code || m.body["message"] != tc.msg {
			t.Errorf("case %d: %s, want %v %s", i, m.raw, tc.code, tc.msg)
		}
		// A token is echoed when the request had a readable one.
		if tok := fmt.Sprintf("c%d", i+1); strings.Contains(tc.body, `"`+tok+`"`) && m.body["clientToken"] != tok {
			t.Errorf("case %d: token not echoed: %s", i, m.raw)
		}
	}
	if d, _ := e.Document(thing, ""); d.Version != 1 {
		t.Fatalf("rejected updates changed the version to %d", d.Version)
	}

	// The right version is accepted.
	c.send(prefix+"/update", `{"state":{"reported":{"a":2}},"version":1,"clientToken":"v1"}`)
	if m := c.wait("/update/accepted", "v1"); m.body["version"] != float64(2) {
		t.Fatalf("accepted %s", m.raw)
	}
	e.InjectConflicts(thing, "", 1)
	c.send(prefix+"/update", `{"state":{"reported":{"a":3}},"version":2,"clientToken":"v2"}`)
	if m := c.wait("/update/rejected", "v2"); m.body["code"] != float64(409) {
		t.Fatalf("injected conflict %s", m.raw)
	}
	c.send(prefix+"/update", `{"state":{"reported":{"a":3}},"version":3,"clientToken":"v3"}`)
	c.wait("/update/accepted", "v3")
	// A cloud app's bad update comes back as an error, not on MQTT.
	big := map[string]any{"x": strings.Repeat("y", 9000)}
	if err := e.UpdateDesired(thing, "", big); err == nil || !strings.Contains(err.Error(), "413") {
		t.Fatalf("oversized desired: %v", err)
	}
}

func TestDeleteAndNamedShadow(t *testing.T) {
	e, c := setup(t)
	named := prefix + "/name/cfg"
	c.send(named+"/update", `{"state":{"desired":{"x":1}},"clientToken":"n1"}`)
	if m := c.wait("/name/cfg/update/accepted", "n1"); m.body["version"] != float64(1) {
		t.Fatalf("named accepted %s", m.raw)
	}
	c.wait("/name/cfg/update/delta", "n1")
	if _, ok := e.Document(thing, ""); ok {
		t.Fatal("named update made a classic shadow")
	}
	c.send(named+"/get", "")
	if m := c.wait("/name/cfg/get/accepted", ""); at(m.body, "state", "desired", "x") != float64(1) {
		t.Fatalf("named get %s", m.raw)
	}
	c.send(named+"/delete", `{"clientToken":"d1"}`)
	if m := c.wait("/name/cfg/delete/accepted", "d1"); m.body["version"] != float64(1) {
		t.Fatalf("delete %s", m.raw)
	}
	c.send(named+"/get", `{"clientToken":"g2"}`)
	if m := c.wait("/name/cfg/get/rejected", "g2"); m.body["message"] != "No shadow exists with name: 'cfg'" {
		t.Fatalf("get after delete %s", m.raw)
	}
	// A shadow made again continues the deleted one's version.
	c.send(named+"/update", `{"state":{"reported":{"x":1}},"clientToken":"n2"}`)
	if m := c.wait("/name/cfg/update/accepted", "n2"); m.body["version"] != float64(2) {
		t.Fatalf("recreated %s", m.raw)
	}
}

func at(doc map[string]any, path ...string) any {
	var v any = doc
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// The status rule's stand-in: a Will on the status topic turns the
// shadow's connected false; "ts" is dropped as SELECT state drops it.
func TestMirrorStatus(t *testing.T) {
	e, c := setup(t)
	if err := e.MirrorStatus("kits/#"); err == nil {
		t.Fatal("filter without '+' accepted")
	}
	if err := e.MirrorStatus("kits/+/status"); err != nil {
		t.Fatal(err)
	}
	c.send("kits/"+thing+"/status", `{"state":{"reported":{"connected":true}},"ts":"2026-11-21T12:00:00.000Z"}`)
	if m := c.wait("/update/accepted", ""); at(m.body, "state", "reported", "connected") != true {
		t.Fatalf("accepted %s", m.raw)
	}
	c.send("kits/"+thing+"/status", `{"state":{"reported":{"connected":false}}}`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, ok := e.Document(thing, "")
		if ok && d.State.Reported["connected"] == false && d.Version == 2 {
			if _, has := d.State.Reported["ts"]; has {
				t.Fatal("ts copied into the shadow")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("document %+v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
