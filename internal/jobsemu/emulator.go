package jobsemu

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"github.com/kitd-dev/kitd/internal/emuconn"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// requestFilters are every thing's request topics; replies go to
// sub-topics, which none of these match, so the emulator never hears
// itself.
var requestFilters = map[string]byte{
	"$aws/things/+/jobs/get":        1,
	"$aws/things/+/jobs/start-next": 1,
	"$aws/things/+/jobs/+/get":      1,
	"$aws/things/+/jobs/+/update":   1,
}

const publishTimeout = 5 * time.Second

// Statuses of an execution, as the service names them.
const (
	Queued     = "QUEUED"
	InProgress = "IN_PROGRESS"
	Succeeded  = "SUCCEEDED"
	Failed     = "FAILED"
	Rejected   = "REJECTED"
	TimedOut   = "TIMED_OUT"
	Canceled   = "CANCELED"
	Removed    = "REMOVED"
)

func terminal(s string) bool { return s != Queued && s != InProgress }

var jobIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Options tune the emulator; the zero value is AWS's behaviour.
type Options struct {
	// Minute is the length of a step-timeout minute; 0 is a minute.
	Minute time.Duration
	Log    *slog.Logger
}

// Change is one accepted change of an execution: queued, an update, a
// step timeout.
type Change struct {
	Thing, JobID    string
	ExecutionNumber int64
	Status          string
	StatusDetails   map[string]string
	VersionNumber   int64
	At              time.Time
}

// Emulator serves the Jobs topics on one broker.
type Emulator struct {
	client mqtt.Client
	opt    Options
	log    *slog.Logger

	qmu   sync.Mutex
	queue []request
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu       sync.Mutex
	things   map[string]*thing
	history  []Change
	onChange []func(Change)
	drop     func(topic string, payload []byte) bool
}

type thing struct {
	execs   []*execution // in queue order
	numbers map[string]int64
	next    string // the next pending execution as last notified ("" none)
}

type execution struct {
	jobID         string
	doc           json.RawMessage
	status        string
	details       map[string]string
	queuedAt      int64
	startedAt     int64
	lastUpdatedAt int64
	version       int64
	number        int64
	stepTimer     *time.Timer
}

type request struct {
	topic   string
	payload []byte
}

// Start connects to broker as clientID (over TLS when tlsCfg is set) and
// serves until Close. ctx bounds the start only.
func Start(ctx context.Context, broker string, tlsCfg *tls.Config, clientID string, opt Options) (*Emulator, error) {
	if opt.Minute <= 0 {
		opt.Minute = time.Minute
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{
		opt:    opt,
		log:    log.With("component", "jobsemu"),
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		things: map[string]*thing{},
	}
	c, err := emuconn.Connect(ctx, broker, clientID, tlsCfg, func(c mqtt.Client) error {
		return emuconn.Subscribe(c, requestFilters, e.receive)
	})
	if err != nil {
		return nil, fmt.Errorf("jobsemu: %w", err)
	}
	e.client = c
	go e.run()
	return e, nil
}

// Close disconnects and stops the emulator; safe to call twice.
func (e *Emulator) Close() error {
	e.once.Do(func() {
		close(e.stop)
		e.client.Disconnect(250)
		<-e.done
		e.mu.Lock()
		for _, t := range e.things {
			for _, x := range t.execs {
				if x.stepTimer != nil {
					x.stepTimer.Stop()
				}
			}
		}
		e.mu.Unlock()
	})
	return nil
}

// Drop makes requests for which f returns true vanish unanswered, as a
// message lost on the way would (nil: none). Tests use it to stop a
// result from reaching the service before the kit is killed.
func (e *Emulator) Drop(f func(topic string, payload []byte) bool) {
	e.mu.Lock()
	e.drop = f
	e.mu.Unlock()
}

// OnChange calls f, on the emulator's goroutine, with every change of
// every execution, in order. f must not call the emulator.
func (e *Emulator) OnChange(f func(Change)) {
	e.mu.Lock()
	e.onChange = append(e.onChange, f)
	e.mu.Unlock()
}

// History is every change of thing's executions of jobID so far.
func (e *Emulator) History(thingName, jobID string) []Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Change
	for _, c := range e.history {
		if c.Thing == thingName && c.JobID == jobID {
			out = append(out, c)
		}
	}
	return out
}

// Status is the status of thing's latest execution of jobID, "" if none.
func (e *Emulator) Status(thingName, jobID string) string {
	x := e.Execution(thingName, jobID)
	if x == nil {
		return ""
	}
	return x.Status
}

// Execution is a snapshot of thing's latest execution of jobID, nil if
// none.
func (e *Emulator) Execution(thingName, jobID string) *Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.things[thingName]
	if t == nil {
		return nil
	}
	for i := len(t.execs) - 1; i >= 0; i-- {
		if x := t.execs[i]; x.jobID == jobID {
			c := changeOf(thingName, x)
			return &c
		}
	}
	return nil
}

// Queue adds an execution of jobID with document doc for thing, as
// `aws iot create-job` does for each target: QUEUED, version 1, the next
// executionNumber of that job on the thing. The document must be a JSON
// object (AWS refuses others at create-job).
func (e *Emulator) Queue(thingName, jobID string, doc []byte) error {
	if !jobIDPattern.MatchString(jobID) {
		return fmt.Errorf("jobsemu: job id %q: want 1-64 of [a-zA-Z0-9_-]", jobID)
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil || m == nil {
		return fmt.Errorf("jobsemu: job %s: the document is not a JSON object", jobID)
	}
	if len(doc) > 32<<10 {
		return fmt.Errorf("jobsemu: job %s: document over 32 KB", jobID)
	}
	e.mu.Lock()
	t := e.thingLocked(thingName)
	for _, x := range t.execs {
		if x.jobID == jobID && !terminal(x.status) {
			e.mu.Unlock()
			return fmt.Errorf("jobsemu: job %s already has a pending execution on %s", jobID, thingName)
		}
	}
	t.numbers[jobID]++
	now := time.Now().Unix()
	x := &execution{jobID: jobID, doc: append(json.RawMessage(nil), doc...), status: Queued,
		queuedAt: now, lastUpdatedAt: now, version: 1, number: t.numbers[jobID]}
	t.execs = append(t.execs, x)
	e.recordLocked(thingName, x)
	out := e.notifyLocked(thingName, t)
	e.mu.Unlock()
	e.publish(out)
	return nil
}

// Cancel cancels thing's pending execution of jobID, as
// `aws iot cancel-job-execution --force` does.
func (e *Emulator) Cancel(thingName, jobID string) error {
	e.mu.Lock()
	t := e.thingLocked(thingName)
	var x *execution
	for _, c := range t.execs {
		if c.jobID == jobID && !terminal(c.status) {
			x = c
		}
	}
	if x == nil {
		e.mu.Unlock()
		return fmt.Errorf("jobsemu: no pending execution of %s on %s", jobID, thingName)
	}
	e.setLocked(thingName, x, Canceled, nil, 0)
	out := e.notifyLocked(thingName, t)
	e.mu.Unlock()
	e.publish(out)
	return nil
}

// Touch updates thing's pending execution of jobID as another writer
// would (a second agent process, an operator's update): its version goes
// up by one, so the kit's next update with the old expectedVersion is
// rejected with VersionMismatch.
func (e *Emulator) Touch(thingName, jobID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.thingLocked(thingName).execs {
		if x.jobID == jobID && !terminal(x.status) {
			e.setLocked(thingName, x, x.status, nil, 0)
			return nil
		}
	}
	return fmt.Errorf("jobsemu: no pending execution of %s on %s", jobID, thingName)
}

func (e *Emulator) thingLocked(name string) *thing {
	t := e.things[name]
	if t == nil {
		t = &thing{numbers: map[string]int64{}}
		e.things[name] = t
	}
	return t
}

func changeOf(thingName string, x *execution) Change {
	d := make(map[string]string, len(x.details))
	for k, v := range x.details {
		d[k] = v
	}
	return Change{Thing: thingName, JobID: x.jobID, ExecutionNumber: x.number, Status: x.status,
		StatusDetails: d, VersionNumber: x.version, At: time.Now()}
}

func (e *Emulator) recordLocked(thingName string, x *execution) {
	c := changeOf(thingName, x)
	e.history = append(e.history, c)
	for _, f := range e.onChange {
		f(c)
	}
}

// setLocked changes an execution's status (and details when given),
// with a new version; step > 0 (re)starts the step timer.
func (e *Emulator) setLocked(thingName string, x *execution, status string, details map[string]string, step int) {
	now := time.Now().Unix()
	if status == InProgress && x.startedAt == 0 {
		x.startedAt = now
	}
	x.status = status
	if details != nil {
		x.details = details
	}
	x.version++
	x.lastUpdatedAt = now
	if x.stepTimer != nil && (terminal(status) || step > 0) {
		x.stepTimer.Stop()
		x.stepTimer = nil
	}
	if step > 0 && status == InProgress {
		ver := x.version
		x.stepTimer = time.AfterFunc(time.Duration(step)*e.opt.Minute, func() { e.stepTimeout(thingName, x, ver) })
	}
	e.recordLocked(thingName, x)
}

// stepTimeout ends an execution the device did not update within its
// step timeout.
func (e *Emulator) stepTimeout(thingName string, x *execution, ver int64) {
	e.mu.Lock()
	if x.status != InProgress || x.version != ver {
		e.mu.Unlock()
		return
	}
	e.setLocked(thingName, x, TimedOut, nil, 0)
	out := e.notifyLocked(thingName, e.thingLocked(thingName))
	e.mu.Unlock()
	e.publish(out)
}

// nextLocked is the next pending execution: the first IN_PROGRESS one,
// else the first QUEUED one.
func (t *thing) nextLocked() *execution {
	for _, x := range t.execs {
		if x.status == InProgress {
			return x
		}
	}
	for _, x := range t.execs {
		if x.status == Queued {
			return x
		}
	}
	return nil
}

// notifyLocked publishes notify-next when the next pending execution is
// another one than last notified.
func (e *Emulator) notifyLocked(thingName string, t *thing) []outgoing {
	n := t.nextLocked()
	key := ""
	if n != nil {
		key = fmt.Sprintf("%s/%d", n.jobID, n.number)
	}
	if key == t.next {
		return nil
	}
	t.next = key
	body := map[string]any{"timestamp": time.Now().Unix()}
	if n != nil {
		body["execution"] = executionJSON(thingName, n, true)
	}
	return []outgoing{{topic: "$aws/things/" + thingName + "/jobs/notify-next", payload: body}}
}

func executionJSON(thingName string, x *execution, withDoc bool) map[string]any {
	m := map[string]any{
		"jobId":           x.jobID,
		"thingName":       thingName,
		"status":          x.status,
		"queuedAt":        x.queuedAt,
		"lastUpdatedAt":   x.lastUpdatedAt,
		"versionNumber":   x.version,
		"executionNumber": x.number,
	}
	if x.startedAt != 0 {
		m["startedAt"] = x.startedAt
	}
	if len(x.details) > 0 {
		m["statusDetails"] = x.details
	}
	if withDoc {
		m["jobDocument"] = x.doc
	}
	return m
}

func (e *Emulator) receive(_ mqtt.Client, m mqtt.Message) {
	e.qmu.Lock()
	e.queue = append(e.queue, request{topic: m.Topic(), payload: m.Payload()})
	e.qmu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// run answers requests one at a time, in arrival order.
func (e *Emulator) run() {
	defer close(e.done)
	for {
		e.qmu.Lock()
		batch := e.queue
		e.queue = nil
		e.qmu.Unlock()
		for _, r := range batch {
			e.handle(r)
		}
		select {
		case <-e.wake:
		case <-e.stop:
			return
		}
	}
}

type outgoing struct {
	topic   string
	payload any
}

func (e *Emulator) publish(out []outgoing) {
	for _, o := range out {
		b, err := json.Marshal(o.payload)
		if err != nil {
			e.log.Error("jobsemu: encode", "topic", o.topic, "err", err)
			continue
		}
		tok := e.client.Publish(o.topic, 1, false, b)
		if !tok.WaitTimeout(publishTimeout) {
			e.log.Warn("jobsemu: publish timed out", "topic", o.topic)
			continue
		}
		if err := tok.Error(); err != nil {
			e.log.Warn("jobsemu: publish failed", "topic", o.topic, "err", err)
		}
	}
}

// rejection is an error answer.
type rejection struct {
	code, msg string
	state     map[string]any
}

func (e *Emulator) handle(r request) {
	parts := strings.Split(r.topic, "/")
	if len(parts) < 5 || parts[0] != "$aws" || parts[1] != "things" || parts[3] != "jobs" {
		return
	}
	thingName := parts[2]
	e.mu.Lock()
	if e.drop != nil && e.drop(r.topic, r.payload) {
		e.mu.Unlock()
		e.log.Info("jobsemu: request dropped", "topic", r.topic)
		return
	}
	var body map[string]json.RawMessage
	var (
		acc map[string]any
		rej *rejection
		out []outgoing
	)
	token := ""
	if err := json.Unmarshal(r.payload, &body); err != nil || body == nil {
		rej = &rejection{code: "InvalidJson", msg: "the request is not a JSON object"}
	} else {
		if t, ok := body["clientToken"]; ok {
			if json.Unmarshal(t, &token) != nil || len(token) > 64 {
				rej = &rejection{code: "InvalidRequest", msg: "clientToken must be a string of at most 64 characters"}
				token = ""
			}
		}
	}
	if rej == nil {
		t := e.thingLocked(thingName)
		switch {
		case len(parts) == 5 && parts[4] == "get":
			acc = e.pendingLocked(thingName, t)
		case len(parts) == 5 && parts[4] == "start-next":
			acc, rej = e.startNextLocked(thingName, t, body)
		case len(parts) == 6 && parts[5] == "get":
			acc, rej = e.describeLocked(thingName, t, parts[4], body)
		case len(parts) == 6 && parts[5] == "update":
			acc, rej = e.updateLocked(thingName, t, parts[4], body)
		default:
			rej = &rejection{code: "InvalidTopic", msg: "not a Jobs topic: " + r.topic}
		}
		if rej == nil {
			out = e.notifyLocked(thingName, t)
		}
	}
	e.mu.Unlock()
	ts := time.Now().Unix()
	if rej != nil {
		p := map[string]any{"code": rej.code, "message": rej.msg, "timestamp": ts}
		if token != "" {
			p["clientToken"] = token
		}
		if rej.state != nil {
			p["executionState"] = rej.state
		}
		e.publish([]outgoing{{r.topic + "/rejected", p}})
		return
	}
	acc["timestamp"] = ts
	if token != "" {
		acc["clientToken"] = token
	}
	// The reply first, then the notification, as a requester expects.
	e.publish(append([]outgoing{{r.topic + "/accepted", acc}}, out...))
}

func (e *Emulator) pendingLocked(thingName string, t *thing) map[string]any {
	var inProgress, queued []map[string]any
	for _, x := range t.execs {
		s := map[string]any{"jobId": x.jobID, "queuedAt": x.queuedAt, "lastUpdatedAt": x.lastUpdatedAt,
			"versionNumber": x.version, "executionNumber": x.number}
		switch x.status {
		case InProgress:
			s["startedAt"] = x.startedAt
			inProgress = append(inProgress, s)
		case Queued:
			queued = append(queued, s)
		}
	}
	return map[string]any{"inProgressJobs": orEmpty(inProgress), "queuedJobs": orEmpty(queued)}
}

func orEmpty(s []map[string]any) []map[string]any {
	if s == nil {
		return []map[string]any{}
	}
	return s
}

func (e *Emulator) startNextLocked(thingName string, t *thing, body map[string]json.RawMessage) (map[string]any, *rejection) {
	details, rej := parseDetails(body)
	if rej != nil {
		return nil, rej
	}
	step, rej := parseStep(body)
	if rej != nil {
		return nil, rej
	}
	x := t.nextLocked()
	if x == nil {
		return map[string]any{}, nil // no execution member: nothing pending
	}
	if x.status == Queued {
		e.setLocked(thingName, x, InProgress, details, step)
	}
	// Silent in AWS's documentation: an execution already IN_PROGRESS
	// is returned unchanged.
	return map[string]any{"execution": executionJSON(thingName, x, true)}, nil
}

func (e *Emulator) describeLocked(thingName string, t *thing, jobID string, body map[string]json.RawMessage) (map[string]any, *rejection) {
	withDoc := true
	if v, ok := body["includeJobDocument"]; ok && json.Unmarshal(v, &withDoc) != nil {
		return nil, &rejection{code: "InvalidRequest", msg: "includeJobDocument must be a boolean"}
	}
	if jobID == "$next" {
		x := t.nextLocked()
		if x == nil {
			return map[string]any{}, nil
		}
		return map[string]any{"execution": executionJSON(thingName, x, withDoc)}, nil
	}
	x, rej := findLocked(t, jobID, body)
	if rej != nil {
		return nil, rej
	}
	return map[string]any{"execution": executionJSON(thingName, x, withDoc)}, nil
}

// findLocked is the execution a request names: by executionNumber when
// given, else the latest of the job.
func findLocked(t *thing, jobID string, body map[string]json.RawMessage) (*execution, *rejection) {
	var number int64
	if v, ok := body["executionNumber"]; ok && json.Unmarshal(v, &number) != nil {
		return nil, &rejection{code: "InvalidRequest", msg: "executionNumber must be a number"}
	}
	for i := len(t.execs) - 1; i >= 0; i-- {
		x := t.execs[i]
		if x.jobID == jobID && (number == 0 || x.number == number) {
			return x, nil
		}
	}
	return nil, &rejection{code: "ResourceNotFound", msg: fmt.Sprintf("job execution %s (execution number %d) not found", jobID, number)}
}

func (e *Emulator) updateLocked(thingName string, t *thing, jobID string, body map[string]json.RawMessage) (map[string]any, *rejection) {
	var status string
	if v, ok := body["status"]; !ok || json.Unmarshal(v, &status) != nil {
		return nil, &rejection{code: "InvalidRequest", msg: "status is required"}
	}
	switch status {
	case InProgress, Succeeded, Failed, Rejected:
	default:
		return nil, &rejection{code: "InvalidRequest", msg: fmt.Sprintf("status %q: a device may set IN_PROGRESS, SUCCEEDED, FAILED or REJECTED", status)}
	}
	details, rej := parseDetails(body)
	if rej != nil {
		return nil, rej
	}
	step, rej := parseStep(body)
	if rej != nil {
		return nil, rej
	}
	var withState, withDoc bool
	if v, ok := body["includeJobExecutionState"]; ok && json.Unmarshal(v, &withState) != nil {
		return nil, &rejection{code: "InvalidRequest", msg: "includeJobExecutionState must be a boolean"}
	}
	if v, ok := body["includeJobDocument"]; ok && json.Unmarshal(v, &withDoc) != nil {
		return nil, &rejection{code: "InvalidRequest", msg: "includeJobDocument must be a boolean"}
	}
	x, rej := findLocked(t, jobID, body)
	if rej != nil {
		return nil, rej
	}
	state := map[string]any{"status": x.status, "versionNumber": x.version}
	if len(x.details) > 0 {
		state["statusDetails"] = x.details
	}
	if v, ok := body["expectedVersion"]; ok {
		var want int64
		if json.Unmarshal(v, &want) != nil {
			return nil, &rejection{code: "InvalidRequest", msg: "expectedVersion must be a number"}
		}
		if want != x.version {
			return nil, &rejection{code: "VersionMismatch", msg: fmt.Sprintf("expected version %d, the execution is at %d", want, x.version), state: state}
		}
	}
	if terminal(x.status) {
		return nil, &rejection{code: "TerminalStateReached", msg: fmt.Sprintf("the execution is %s", x.status)}
	}
	e.setLocked(thingName, x, status, details, step)
	acc := map[string]any{}
	if withState {
		st := map[string]any{"status": x.status, "versionNumber": x.version}
		if len(x.details) > 0 {
			st["statusDetails"] = x.details
		}
		acc["executionState"] = st
	}
	if withDoc {
		acc["jobDocument"] = x.doc
	}
	return acc, nil
}

var detailKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)

// parseDetails checks statusDetails against AWS's limits; nil when absent.
func parseDetails(body map[string]json.RawMessage) (map[string]string, *rejection) {
	v, ok := body["statusDetails"]
	if !ok {
		return nil, nil
	}
	var d map[string]string
	if err := json.Unmarshal(v, &d); err != nil {
		return nil, &rejection{code: "InvalidRequest", msg: "statusDetails must be an object of strings"}
	}
	if len(d) > 10 {
		return nil, &rejection{code: "InvalidRequest", msg: "statusDetails: at most 10 name/value pairs"}
	}
	for k, val := range d {
		if !detailKeyPattern.MatchString(k) {
			return nil, &rejection{code: "InvalidRequest", msg: fmt.Sprintf("statusDetails key %q: want 1-128 of [a-zA-Z0-9:_-]", k)}
		}
		n := utf8.RuneCountInString(val)
		if n < 1 || n > 1024 || strings.IndexFunc(val, func(r rune) bool { return unicode.Is(unicode.C, r) }) >= 0 {
			return nil, &rejection{code: "InvalidRequest", msg: fmt.Sprintf("statusDetails %q: a value is 1-1024 characters, no control characters", k)}
		}
	}
	if d == nil {
		d = map[string]string{}
	}
	return d, nil
}

func parseStep(body map[string]json.RawMessage) (int, *rejection) {
	v, ok := body["stepTimeoutInMinutes"]
	if !ok {
		return 0, nil
	}
	var n int
	if json.Unmarshal(v, &n) != nil || n < 1 || n > 10080 {
		return 0, &rejection{code: "InvalidRequest", msg: "stepTimeoutInMinutes must be an integer from 1 to 10080"}
	}
	return n, nil
}
