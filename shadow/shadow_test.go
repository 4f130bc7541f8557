//go:build mosquitto

package shadow

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// On connect the kit reports everything the contract lists, connected
// true first among them.
func TestReportOnConnect(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, nil)
	e.connect(k)
	e.synced(k)

	r := e.doc("").State.Reported
	want := map[string]any{
		"connected":               true,
		"agent.version":           "1.2.3",
		"agent.arch":              "linux/arm",
		"agent.started":           "2026-11-21T12:00:00.000Z",
		"agent.cert_expires":      "2027-11-21T12:00:00.000Z",
		"sensors.a.driver":        "sim",
		"sensors.a.interval":      "1s",
		"sensors.a.enabled":       true,
		"sensors.a.ok":            true,
		"sensors.b.interval":      "2s",
		"sensors.b.ok":            false,
		"sensors.b.last_error":    "read: timeout",
		"buffer.pending":          float64(3),
		"buffer.bytes":            float64(300),
		"buffer.dropped":          float64(20),
		"mqtt.batch.max_readings": float64(1),
	}
	for path, v := range want {
		if got := at(r, strings.Split(path, ".")...); got != v {
			t.Errorf("reported.%s = %#v, want %#v", path, got, v)
		}
	}
	ranges, _ := json.Marshal(at(r, "buffer", "dropped_ranges"))
	if string(ranges) != "[[5,14],[40,49]]" {
		t.Errorf("dropped_ranges %s", ranges)
	}
	if _, ok := r["errors"]; ok {
		t.Errorf("errors reported with nothing wrong: %v", r["errors"])
	}
	// Reported() is what the service holds, once the kit has its answer.
	eventually(t, "Reported() after the accepted report", func() bool {
		r := k.s.Reported()
		return at(r, "sensors", "a", "interval") == "1s" && r["connected"] == true
	})
}

// A desired interval reaches the Target at once, is echoed in the form it
// was given, so the delta clears, and is persisted.
func TestDesiredIntervalAppliedLive(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, nil)
	e.connect(k)
	e.synced(k)

	if err := e.emu.UpdateDesired(kitID, "", map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "60s"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "interval applied", func() bool { return k.target.intervalOf("a") == time.Minute })
	// min_report_interval is an hour here: only an immediate
	// acknowledgement can clear the delta within the wait.
	eventually(t, "delta cleared", func() bool {
		d := e.doc("")
		return len(d.State.Delta) == 0 && at(d.State.Reported, "sensors", "a", "interval") == "60s"
	})
	b, err := os.ReadFile(k.cfg.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"interval": "60s"`) {
		t.Fatalf("state file does not hold the applied setting:\n%s", b)
	}

	// The batch size and enabled flag too, numbers echoed as given.
	if err := e.emu.UpdateDesired(kitID, "", map[string]any{
		"sensors": map[string]any{"b": map[string]any{"enabled": false}},
		"mqtt":    map[string]any{"batch": map[string]any{"max_readings": json.Number("50.0")}},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "batch and enabled applied", func() bool {
		s := k.target.snap()
		return s.batch == 50 && !s.enabled["b"]
	})
	eventually(t, "delta cleared", func() bool {
		d := e.doc("")
		return len(d.State.Delta) == 0 && at(d.State.Reported, "mqtt", "batch", "max_readings") == float64(50)
	})
	// mqtt.batch.max_delay rides beside it, from the config (not settable).
	if got := at(e.doc("").State.Reported, "mqtt", "batch", "max_delay"); got != "1m0s" {
		t.Errorf("reported mqtt.batch.max_delay %v, want 1m0s", got)
	}
}

// Invalid values and unknown keys change nothing, not even the valid part
// of the same document, and show up in errors; fixing them applies the
// document and clears the entries.
func TestInvalidDesiredRejectedAllOrNothing(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, nil)
	e.connect(k)
	e.synced(k)
	before := k.target.callCount()

	err := e.emu.UpdateDesired(kitID, "", map[string]any{
		"sensors": map[string]any{
			"a":     map[string]any{"interval": "30s"},
			"b":     map[string]any{"interval": "50ms", "enabled": "yes"},
			"ghost": map[string]any{"interval": "5s"},
		},
		"mqtt":  map[string]any{"batch": map[string]any{"max_readings": 1001}},
		"bogus": 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantErrs := []string{"bogus", "mqtt.batch.max_readings", "sensors.b.enabled", "sensors.b.interval", "sensors.ghost"}
	eventually(t, "errors reported", func() bool {
		errs, _ := e.doc("").State.Reported["errors"].(map[string]any)
		return strings.Join(keys(errs), ",") == strings.Join(wantErrs, ",")
	})
	errs := e.doc("").State.Reported["errors"].(map[string]any)
	if m := errs["sensors.b.interval"].(string); !strings.Contains(m, "at least 100ms") {
		t.Errorf("interval error %q does not say the rule", m)
	}
	if m := errs["mqtt.batch.max_readings"].(string); !strings.Contains(m, "1 to 1000") {
		t.Errorf("batch error %q does not say the bounds", m)
	}
	if n := k.target.callCount(); n != before {
		t.Fatalf("target called %d times for a rejected document", n-before)
	}
	if got := at(e.doc("").State.Reported, "sensors", "a", "interval"); got != "1s" {
		t.Fatalf("sensors.a.interval reported %v after a rejected document", got)
	}
	if _, err := os.Stat(k.cfg.StateFile); !os.IsNotExist(err) {
		t.Fatalf("state file written for a rejected document: %v", err)
	}

	// Fix some paths only: the document is still rejected as a whole,
	// but the entries of the fixed paths go (the errors describe the
	// desired state as it is now, not as it was).
	err = e.emu.UpdateDesired(kitID, "", map[string]any{
		"sensors": map[string]any{
			"b":     map[string]any{"interval": "5s", "enabled": false},
			"ghost": nil,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "entries of fixed paths removed", func() bool {
		errs, _ := e.doc("").State.Reported["errors"].(map[string]any)
		return strings.Join(keys(errs), ",") == "bogus,mqtt.batch.max_readings"
	})
	if n := k.target.callCount(); n != before {
		t.Fatalf("target called %d times for a document still rejected", n-before)
	}

	// Fix every path: valid values, unknown keys removed.
	err = e.emu.UpdateDesired(kitID, "", map[string]any{
		"sensors": map[string]any{
			"b":     map[string]any{"interval": "5s", "enabled": false},
			"ghost": nil,
		},
		"mqtt":  map[string]any{"batch": map[string]any{"max_readings": 10}},
		"bogus": nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "fixed document applied and errors cleared", func() bool {
		d := e.doc("")
		_, hasErrs := d.State.Reported["errors"]
		return !hasErrs && len(d.State.Delta) == 0
	})
	s := k.target.snap()
	if s.interval["a"] != 30*time.Second || s.interval["b"] != 5*time.Second || s.enabled["b"] || s.batch != 10 {
		t.Fatalf("target after fix: %+v", s)
	}
}

// A version conflict on a report makes the kit get the document again and
// retry; the report lands.
func TestVersionConflictRetried(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, nil)
	rejected := e.spy("$aws/things/" + kitID + "/shadow/+/rejected")
	gets := e.spy("$aws/things/" + kitID + "/shadow/get/accepted")
	e.connect(k)
	e.synced(k)
	getsBefore := len(gets.matching(func(spyMsg) bool { return true }))

	e.emu.InjectConflicts(kitID, "", 2)
	if err := e.emu.UpdateDesired(kitID, "", map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "45s"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "report accepted after conflicts", func() bool {
		d := e.doc("")
		return len(d.State.Delta) == 0 && at(d.State.Reported, "sensors", "a", "interval") == "45s"
	})
	conflicts := rejected.matching(func(m spyMsg) bool {
		tok, _ := m.payload["clientToken"].(string)
		return m.payload["code"] == float64(409) && m.payload["message"] == "Version conflict" && strings.HasPrefix(tok, k.s.tokens.id)
	})
	if len(conflicts) != 2 {
		t.Fatalf("saw %d version conflicts for the kit's updates, want 2", len(conflicts))
	}
	if n := len(gets.matching(func(spyMsg) bool { return true })) - getsBefore; n != 2 {
		t.Fatalf("kit re-got the document %d times after 2 conflicts", n)
	}
}

// A desired change made while the kit was offline (its delta went to no
// one) is applied on the next connect from get; so is a removal.
func TestOfflineChangesAppliedOnReconnect(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, nil)
	c := e.connect(k)
	e.synced(k)
	if err := e.emu.UpdateDesired(kitID, "", map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "20s"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first setting applied", func() bool { return k.target.intervalOf("a") == 20*time.Second })
	eventually(t, "delta cleared", func() bool { return len(e.doc("").State.Delta) == 0 })
	c.close()

	err := e.emu.UpdateDesired(kitID, "", map[string]any{"sensors": map[string]any{
		"a": map[string]any{"interval": nil},
		"b": map[string]any{"interval": "90s"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if k.target.intervalOf("b") != 2*time.Second {
		t.Fatal("offline kit applied a delta")
	}

	e.connect(k)
	eventually(t, "offline changes applied", func() bool {
		s := k.target.snap()
		return s.interval["b"] == 90*time.Second && s.interval["a"] == time.Second
	})
	eventually(t, "delta cleared and removal reported", func() bool {
		d := e.doc("")
		return len(d.State.Delta) == 0 &&
			at(d.State.Reported, "sensors", "b", "interval") == "90s" &&
			at(d.State.Reported, "sensors", "a", "interval") == "1s"
	})
}

// Removing a desired setting while connected (AWS sends no delta for a
// removal) returns it to the config file's value at once.
func TestRemovedDesiredRevertsLive(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, nil)
	e.connect(k)
	e.synced(k)
	set := map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "60s", "enabled": false}}}
	if err := e.emu.UpdateDesired(kitID, "", set); err != nil {
		t.Fatal(err)
	}
	eventually(t, "applied", func() bool { s := k.target.snap(); return s.interval["a"] == time.Minute && !s.enabled["a"] })
	// And acknowledged: until then the shadow still holds the connect
	// report's "1s", which would satisfy the wait below before the
	// removal is even handled.
	eventually(t, "acknowledged", func() bool { return at(e.doc("").State.Reported, "sensors", "a", "interval") == "60s" })
	if err := e.emu.UpdateDesired(kitID, "", map[string]any{"sensors": map[string]any{"a": nil}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reverted to the config file", func() bool {
		s := k.target.snap()
		return s.interval["a"] == time.Second && s.enabled["a"]
	})
	eventually(t, "file values reported", func() bool {
		r := e.doc("").State.Reported
		return at(r, "sensors", "a", "interval") == "1s" && at(r, "sensors", "a", "enabled") == true
	})
	b, _ := os.ReadFile(k.cfg.StateFile)
	if strings.Contains(string(b), "60s") {
		t.Fatalf("removed setting still persisted:\n%s", b)
	}
}

// The desired state applied before a restart is in force after it, with
// the broker down and no connection at all.
func TestDesiredSurvivesRestartWithBrokerDown(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, nil)
	c := e.connect(k)
	e.synced(k)
	if err := e.emu.UpdateDesired(kitID, "", map[string]any{
		"sensors": map[string]any{"a": map[string]any{"interval": "5m"}, "b": map[string]any{"enabled": false}},
		"mqtt":    map[string]any{"batch": map[string]any{"max_readings": 25}},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "applied", func() bool { return k.target.snap().batch == 25 })
	c.close()
	e.emu.Close()
	e.b.Stop()

	k2 := newKit(t, e.dir, nil) // a fresh process: the Target holds the config file's values
	if err := k2.s.ApplyPersisted(); err != nil {
		t.Fatal(err)
	}
	s := k2.target.snap()
	if s.interval["a"] != 5*time.Minute || s.enabled["b"] || s.batch != 25 || s.interval["b"] != 2*time.Second {
		t.Fatalf("after restart: %+v", s)
	}
}

// A delta older than the newest applied desired state is ignored; a fresh
// one by the same path is applied (the control that makes this fail if
// deltas from the test publisher were simply lost).
func TestStaleDeltaIgnored(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, nil)
	e.connect(k)
	e.synced(k)
	if err := e.emu.UpdateDesired(kitID, "", map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "60s"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "applied", func() bool { return k.target.intervalOf("a") == time.Minute })
	eventually(t, "delta cleared", func() bool { return len(e.doc("").State.Delta) == 0 })
	v := e.doc("").Version
	topic := "$aws/things/" + kitID + "/shadow/update/delta"

	e.publish(topic, map[string]any{"version": v - 3, "timestamp": 1, "state": map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "7s"}}}})
	e.publish(topic, map[string]any{"version": v + 1, "timestamp": 2, "state": map[string]any{"sensors": map[string]any{"b": map[string]any{"interval": "8s"}}}})
	eventually(t, "fresh delta applied", func() bool { return k.target.intervalOf("b") == 8*time.Second })
	if got := k.target.intervalOf("a"); got != time.Minute {
		t.Fatalf("stale delta applied: a = %s", got)
	}
	if !strings.Contains(k.logs.String(), "stale delta ignored") {
		t.Fatal("stale delta not logged")
	}
}

// Reports go only when something changed, at most once per
// min_report_interval.
func TestReportsOnlyChangesRateLimited(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, func(c *Config) { c.MinReportInterval = time.Second })
	updates := e.spy("$aws/things/" + kitID + "/shadow/update/accepted")
	e.connect(k)
	e.synced(k)
	mine := func() []spyMsg {
		return updates.matching(func(m spyMsg) bool {
			tok, _ := m.payload["clientToken"].(string)
			return strings.HasPrefix(tok, k.s.tokens.id)
		})
	}
	eventually(t, "connect report seen", func() bool { return len(mine()) == 1 })
	time.Sleep(2500 * time.Millisecond)
	if n := len(mine()); n != 1 {
		t.Fatalf("%d reports with nothing changed", n-1)
	}

	start := time.Now()
	for i := int64(1); i <= 20; i++ {
		// dropped: a real change (pending alone waits for the heartbeat).
		k.live.set(func(s *State) { s.Buffer.Dropped = 100 + i })
		time.Sleep(50 * time.Millisecond)
	}
	eventually(t, "last change reported", func() bool {
		return at(e.doc("").State.Reported, "buffer", "dropped") == float64(120)
	})
	elapsed := time.Since(start)
	// One report per started second of changes, plus the final one.
	if n, most := len(mine())-1, int(elapsed/time.Second)+1; n < 1 || n > most {
		t.Fatalf("%d reports in %s, want 1..%d", n, elapsed, most)
	}
	last := mine()[len(mine())-1]
	reported := at(last.payload, "state", "reported").(map[string]any)
	if strings.Join(keys(reported), ",") != "buffer" {
		t.Fatalf("report sent more than the change: %v", reported)
	}
}

// A clean shutdown reports connected:false, and nothing after it.
func TestShutdownReportsDisconnected(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, nil)
	c := e.connect(k)
	e.synced(k)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.doc("").State.Reported["connected"]; got != false {
		t.Fatalf("connected = %v after Shutdown", got)
	}
	if got := k.s.Reported()["connected"]; got != false {
		t.Fatalf("Reported() connected = %v", got)
	}
	// Shutdown is idempotent: a second call says the same again.
	if err := k.s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if got := e.doc("").State.Reported["connected"]; got != false {
		t.Fatalf("connected = %v after a second Shutdown", got)
	}
	c.close()
	// A reconnect during shutdown must not say connected again.
	e.connect(k)
	time.Sleep(300 * time.Millisecond)
	if got := e.doc("").State.Reported["connected"]; got != false {
		t.Fatalf("connected = %v after a reconnect during shutdown", got)
	}
	// Without a connection there is nothing to report through.
	k2 := newKit(t, t.TempDir(), nil)
	if err := k2.s.Shutdown(ctx); err != nil {
		t.Fatalf("no connection: %v", err)
	}
}

// A named shadow uses .../shadow/name/<name>/... and leaves the classic
// shadow alone.
func TestNamedShadow(t *testing.T) {
	e := newEnv(t)
	k := newKit(t, e.dir, func(c *Config) { c.Name = "kitd" })
	e.connect(k)
	e.synced(k)
	if _, ok := e.emu.Document(kitID, ""); ok {
		t.Fatal("classic shadow written for a named shadow config")
	}
	if err := e.emu.UpdateDesired(kitID, "kitd", map[string]any{"sensors": map[string]any{"b": map[string]any{"interval": "3s"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "named desired applied", func() bool { return k.target.intervalOf("b") == 3*time.Second })
	eventually(t, "named delta cleared", func() bool { return len(e.doc("kitd").State.Delta) == 0 })
}

// At most ten requests are in flight on a connection (AWS answers more
// with 429), and an unanswered one times out.
func TestInFlightBoundAndTimeout(t *testing.T) {
	e := newEnv(t)
	e.emu.Close() // nobody answers
	k := newKit(t, e.dir, nil)
	k.s.reqTimeout = time.Second
	gets := e.spy("$aws/things/" + kitID + "/shadow/get")
	tlsCfg, err := e.b.CA.ClientTLS(e.b.Certs[kitID])
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, e.url, tlsCfg, kitID, &Shadow{cfg: Config{}}) // a disabled shadow: the connection only
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ss := &session{s: k.s, conn: pahoConn{c.client}, done: ctx.Done(), sem: make(chan struct{}, maxInFlight),
		events: make(chan event, eventQueue), pending: map[string]pendingReq{}}
	errs := make(chan error, 15)
	for i := 0; i < 15; i++ {
		go func() {
			_, err := ss.request(ctx, "get", k.s.topics.get(), map[string]any{})
			errs <- err
		}()
	}
	eventually(t, "ten requests published", func() bool { return len(gets.matching(func(spyMsg) bool { return true })) == 10 })
	time.Sleep(300 * time.Millisecond)
	if n := len(gets.matching(func(spyMsg) bool { return true })); n != 10 {
		t.Fatalf("%d requests in flight", n)
	}
	for i := 0; i < 15; i++ {
		if err := <-errs; !errorsIs(err, ErrTimeout) {
			t.Fatalf("request %d: %v, want a timeout", i, err)
		}
	}
	if n := len(gets.matching(func(spyMsg) bool { return true })); n != 15 {
		t.Fatalf("%d requests published in all", n)
	}
}
