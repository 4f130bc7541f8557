package jobsemu

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/testkit"
)

const kitName = "kit-9"

// device is a plain MQTT client speaking the Jobs API by hand, so the
// emulator is checked against the documented payloads, not against kitd.
type device struct {
	t  *testing.T
	c  mqtt.Client
	mu sync.Mutex
	in map[string][]map[string]any // topic -> payloads
}

func setup(t *testing.T, minute time.Duration) (*Emulator, *device) {
	t.Helper()
	b := testkit.StartBroker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := Start(ctx, b.URL, b.ClientTLS("svc"), "svc", Options{Minute: minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	d := &device{t: t, in: map[string][]map[string]any{}}
	opts := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID(kitName).SetTLSConfig(b.ClientTLS(kitName)).
		SetAutoReconnect(false).SetCleanSession(true)
	d.c = mqtt.NewClient(opts)
	if tok := d.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(100) })
	tok := d.c.Subscribe("$aws/things/"+kitName+"/jobs/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		var p map[string]any
		_ = json.Unmarshal(m.Payload(), &p)
		d.mu.Lock()
		d.in[m.Topic()] = append(d.in[m.Topic()], p)
		d.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return e, d
}

// call publishes a request and waits for the answer with its token on
// accepted or rejected; it returns which and the payload.
func (d *device) call(topic, token string, body map[string]any) (string, map[string]any) {
	d.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	body["clientToken"] = token
	b, _ := json.Marshal(body)
	return d.raw(topic, token, b)
}

func (d *device) raw(topic, token string, b []byte) (string, map[string]any) {
	d.t.Helper()
	full := "$aws/things/" + kitName + "/jobs/" + topic
	if tok := d.c.Publish(full, 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		d.t.Fatalf("publish: %v", tok.Error())
	}
	var kind string
	var got map[string]any
	testkit.WaitFor(d.t, 20*time.Second, "answer to "+topic, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, k := range []string{"accepted", "rejected"} {
			for _, p := range d.in[full+"/"+k] {
				if p["clientToken"] == token || (token == "" && p["clientToken"] == nil) {
					kind, got = k, p
					return true
				}
			}
		}
		return false
	})
	return kind, got
}

func (d *device) notifications() []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]map[string]any(nil), d.in["$aws/things/"+kitName+"/jobs/notify-next"]...)
}

func execOf(t *testing.T, p map[string]any) map[string]any {
	t.Helper()
	x, ok := p["execution"].(map[string]any)
	if !ok {
		t.Fatalf("no execution in %v", p)
	}
	return x
}

// The documented life of two executions: notify-next on queueing, $next
// is the first, start-next moves it to IN_PROGRESS with a new version,
// updates check expectedVersion and executionNumber, ended executions
// refuse updates, and the next one is notified.
func TestJobsLifecycle(t *testing.T) {
	e, d := setup(t, 0)
	if err := e.Queue(kitName, "job-1", []byte(`{"operation":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.Queue(kitName, "job-2", []byte(`{"operation":"b"}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.Queue(kitName, "job-1", []byte(`{"operation":"a"}`)); err == nil {
		t.Error("a second pending execution of one job was queued")
	}
	testkit.WaitFor(t, 10*time.Second, "notify-next", func() bool { return len(d.notifications()) == 1 })
	if x := execOf(t, d.notifications()[0]); x["jobId"] != "job-1" || x["status"] != Queued {
		t.Fatalf("notify-next: %v", x)
	}

	kind, p := d.call("get", "t0", nil)
	if q, ok := p["queuedJobs"].([]any); kind != "accepted" || !ok || len(q) != 2 || len(p["inProgressJobs"].([]any)) != 0 ||
		q[0].(map[string]any)["jobId"] != "job-1" {
		t.Fatalf("get: %s %v", kind, p)
	}
	kind, p = d.call("$next/get", "t1", nil)
	x := execOf(t, p)
	if kind != "accepted" || x["jobId"] != "job-1" || x["versionNumber"] != 1.0 || x["executionNumber"] != 1.0 ||
		x["jobDocument"].(map[string]any)["operation"] != "a" {
		t.Fatalf("$next/get: %s %v", kind, p)
	}
	kind, p = d.call("start-next", "t2", map[string]any{"statusDetails": map[string]any{"attempt": "1"}, "stepTimeoutInMinutes": 5})
	x = execOf(t, p)
	if kind != "accepted" || x["status"] != InProgress || x["versionNumber"] != 2.0 || x["statusDetails"].(map[string]any)["attempt"] != "1" {
		t.Fatalf("start-next: %s %v", kind, p)
	}
	// start-next again returns the execution in progress, unchanged.
	if _, p = d.call("start-next", "t3", nil); execOf(t, p)["versionNumber"] != 2.0 {
		t.Fatalf("start-next again: %v", p)
	}

	kind, p = d.call("job-1/update", "t4", map[string]any{"status": "IN_PROGRESS", "expectedVersion": 1})
	if kind != "rejected" || p["code"] != "VersionMismatch" || p["executionState"].(map[string]any)["versionNumber"] != 2.0 {
		t.Fatalf("stale version: %s %v", kind, p)
	}
	kind, p = d.call("job-1/update", "t5", map[string]any{"status": "IN_PROGRESS", "executionNumber": 7})
	if kind != "rejected" || p["code"] != "ResourceNotFound" {
		t.Fatalf("wrong execution number: %s %v", kind, p)
	}
	kind, p = d.call("job-1/update", "t6", map[string]any{"status": "QUEUED"})
	if kind != "rejected" || p["code"] != "InvalidRequest" {
		t.Fatalf("back to QUEUED: %s %v", kind, p)
	}
	kind, p = d.call("job-1/update", "t7", map[string]any{"status": "SUCCEEDED", "expectedVersion": 2, "executionNumber": 1,
		"statusDetails": map[string]any{"done": "yes"}, "includeJobExecutionState": true})
	if kind != "accepted" || p["executionState"].(map[string]any)["status"] != Succeeded || p["executionState"].(map[string]any)["versionNumber"] != 3.0 {
		t.Fatalf("succeed: %s %v", kind, p)
	}
	kind, p = d.call("job-1/update", "t8", map[string]any{"status": "FAILED"})
	if kind != "rejected" || p["code"] != "TerminalStateReached" {
		t.Fatalf("after the end: %s %v", kind, p)
	}
	testkit.WaitFor(t, 10*time.Second, "notify-next for job-2", func() bool {
		n := d.notifications()
		return len(n) == 2 && execOf(t, n[1])["jobId"] == "job-2"
	})
	kind, p = d.call("job-1/get", "t9", map[string]any{"includeJobDocument": false})
	if kind != "accepted" || execOf(t, p)["status"] != Succeeded || execOf(t, p)["jobDocument"] != nil {
		t.Fatalf("job-1/get: %s %v", kind, p)
	}
	kind, p = d.call("nope/get", "t10", nil)
	if kind != "rejected" || p["code"] != "ResourceNotFound" {
		t.Fatalf("unknown job: %s %v", kind, p)
	}
	if st := statuses(e.History(kitName, "job-1")); st != "QUEUED IN_PROGRESS SUCCEEDED" {
		t.Errorf("history %s", st)
	}
	// REJECTED straight from QUEUED is a device's choice too.
	if kind, p = d.call("job-2/update", "t11", map[string]any{"status": "REJECTED", "expectedVersion": 1}); kind != "accepted" {
		t.Fatalf("reject from QUEUED: %s %v", kind, p)
	}
	testkit.WaitFor(t, 10*time.Second, "notify-next with nothing pending", func() bool {
		n := d.notifications()
		return len(n) == 3 && n[2]["execution"] == nil
	})
	if _, p = d.call("$next/get", "t12", nil); p["execution"] != nil {
		t.Fatalf("$next with nothing pending: %v", p)
	}
}

func statuses(cs []Change) string {
	var out []string
	for _, c := range cs {
		if len(out) == 0 || out[len(out)-1] != c.Status {
			out = append(out, c.Status)
		}
	}
	return strings.Join(out, " ")
}

// Malformed requests get AWS's codes; statusDetails beyond AWS's limits
// are refused.
func TestJobsRejections(t *testing.T) {
	e, d := setup(t, 0)
	if err := e.Queue(kitName, "job-1", []byte(`{"operation":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if kind, p := d.raw("$next/get", "", []byte("not json")); kind != "rejected" || p["code"] != "InvalidJson" {
		t.Fatalf("not JSON: %s %v", kind, p)
	}
	many := map[string]any{}
	for i := range 11 {
		many[string(rune('a'+i))] = "x"
	}
	for name, details := range map[string]any{
		"eleven pairs":  many,
		"bad key":       map[string]any{"a.b": "x"},
		"empty value":   map[string]any{"a": ""},
		"control char":  map[string]any{"a": "x\ny"},
		"long value":    map[string]any{"a": strings.Repeat("x", 1025)},
		"not a string":  map[string]any{"a": 1},
		"not an object": "x",
	} {
		kind, p := d.call("job-1/update", "d-"+strings.ReplaceAll(name, " ", "-"), map[string]any{"status": "IN_PROGRESS", "statusDetails": details})
		if kind != "rejected" || p["code"] != "InvalidRequest" {
			t.Errorf("%s: %s %v", name, kind, p)
		}
	}
	if kind, p := d.call("start-next", "s", map[string]any{"stepTimeoutInMinutes": 0}); kind != "rejected" || p["code"] != "InvalidRequest" {
		t.Errorf("step 0: %s %v", kind, p)
	}
	if e.Status(kitName, "job-1") != Queued {
		t.Errorf("a rejected request changed the execution: %s", e.Status(kitName, "job-1"))
	}
}

// The step timer: an execution IN_PROGRESS and not updated within its
// step timeout is TIMED_OUT; an IN_PROGRESS update restarts the timer.
func TestStepTimer(t *testing.T) {
	e, d := setup(t, 200*time.Millisecond)
	if err := e.Queue(kitName, "job-1", []byte(`{"operation":"a"}`)); err != nil {
		t.Fatal(err)
	}
	d.call("start-next", "s", map[string]any{"stepTimeoutInMinutes": 1})
	testkit.WaitFor(t, 20*time.Second, "TIMED_OUT", func() bool { return e.Status(kitName, "job-1") == TimedOut })
	if kind, p := d.call("job-1/update", "u", map[string]any{"status": "SUCCEEDED"}); kind != "rejected" || p["code"] != "TerminalStateReached" {
		t.Fatalf("after the timeout: %s %v", kind, p)
	}
}
