package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kitd-dev/kitd/internal/ident"
)

// Defaults of the client's timings.
const (
	// DefaultStepTimeoutMinutes bounds an execution whose document gives
	// no step_timeout_minutes. It is sent to the service as
	// stepTimeoutInMinutes too, so a kit that never comes back leaves the
	// execution TIMED_OUT, not IN_PROGRESS forever.
	DefaultStepTimeoutMinutes = 10
	// MaxStarts is how many agent starts one execution may see: a job
	// during which the agent stopped this many times (a crash loop, kill
	// -9, power cuts) is FAILED rather than resumed again.
	MaxStarts = 5
	// cancelGrace is how long an operation cancelled at its step timeout
	// may take to return before the client reports FAILED without it.
	cancelGrace = 10 * time.Second
	// idleRecheck is how often an idle client asks for the next
	// execution without a notify-next: a lost notification must not leave
	// a job waiting until the next connection.
	idleRecheck = 15 * time.Minute
	// detailAttempt is the statusDetails key the client keeps while an
	// execution is IN_PROGRESS: the number of agent starts that ran it.
	detailAttempt = "attempt"
)

// validJobID is AWS's jobId form; an id that does not match could not be
// put in a topic safely.
func validJobID(s string) bool { return ident.Valid(s, 1, 64, "", ident.Alnum+"_-") }

// Client runs AWS IoT Jobs executions for one thing, one at a time, in
// the service's order, on the publisher's connections. See the package
// documentation for the rules.
type Client struct {
	thing  string
	topics topics
	ops    map[string]Operation
	log    *slog.Logger

	// minute is a step-timeout minute (tests shrink it); reqTimeout bounds
	// each request, as AWS answers in well under a second.
	minute     time.Duration
	reqTimeout time.Duration

	tokenID string
	tokenN  atomic.Uint64

	mu sync.Mutex
	// started are the executions this process started or resumed
	// (jobId/executionNumber): seen IN_PROGRESS again after a reconnect
	// they are run again, not counted as another agent start.
	started map[string]int
	// parked are executions whose operation arranged a restart (Result
	// with Status ""): this process leaves them alone.
	parked map[string]bool
	// unreported are results an operation returned that did not reach
	// the service (the connection ended, the request timed out): the
	// next attempt reports them rather than run the operation again.
	unreported map[string]Result
	// busy is the execution running now, "" when idle (Busy).
	busy string
}

// Deps are what a Client is built from besides its config section.
type Deps struct {
	// Thing is the kit's thing name (device.id).
	Thing string
	// Operations by name ("kitd.read-now" and so on).
	Operations map[string]Operation
	// Log may be nil (discard); the Client adds component=jobs.
	Log *slog.Logger
}

// New makes a Client. cfg.Enabled is the caller's business: a Client is
// only built for a kit that takes jobs.
func New(cfg Config, deps Deps) (*Client, error) {
	_ = cfg // today the client needs nothing of it; the shape is the lifecycle's (agent/doc.go)
	thing, ops, log := deps.Thing, deps.Operations, deps.Log
	if thing == "" {
		return nil, ErrNoThing
	}
	for name, op := range ops {
		if name == "" || op == nil {
			return nil, fmt.Errorf("%w: %q", ErrBadOperationName, name)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	return &Client{
		thing:      thing,
		topics:     newTopics(thing),
		ops:        maps.Clone(ops),
		log:        log.With("component", "jobs"),
		minute:     time.Minute,
		reqTimeout: 10 * time.Second,
		tokenID:    hex.EncodeToString(id[:]),
		started:    map[string]int{},
		parked:     map[string]bool{},
		unreported: map[string]Result{},
	}, nil
}

// Known lists the operations the client runs, sorted.
func (c *Client) Known() []string { return knownList(c.ops) }

// Busy is the job id of the execution running now, "" when none.
func (c *Client) Busy() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.busy
}

func (c *Client) token() string {
	return "kitd-" + c.tokenID + "-" + strconv.FormatUint(c.tokenN.Add(1), 10)
}

func execKey(e *JobExecution) string {
	return e.JobID + "/" + strconv.FormatInt(e.ExecutionNumber, 10)
}

// OnConnect runs the client on one connection until ctx ends: subscribe,
// then get the next execution, run it, and so on; idle, it waits for
// notify-next. Register it with the publisher, which calls it on its own
// goroutine after every connect; while offline nothing runs.
func (c *Client) OnConnect(ctx context.Context, conn Conn) {
	ss := newSession(ctx, c, conn)
	for _, t := range c.topics.fixed() {
		if err := conn.Subscribe(ctx, t, ss.handle); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("jobs: subscribe failed; waiting for the next connection", "topic", t, "err", err)
			}
			return
		}
	}
	delay := time.Second
	for ctx.Err() == nil {
		ss.drainNotify()
		ex, err := ss.getNext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// One failure is often the connection going away under the
			// request; a second in a row is worth a warning.
			lvl := slog.LevelDebug
			if delay > time.Second {
				lvl = slog.LevelWarn
			}
			c.log.Log(ctx, lvl, "jobs: getting the next execution failed; retrying", "err", err, "in", delay)
			if !ss.waitNotify(ctx, delay) {
				return
			}
			delay = min(2*delay, time.Minute)
			continue
		}
		if ex == nil || c.isParked(ex) {
			delay = time.Second
			// Nothing to do (or only an execution waiting for the
			// restart this process arranged): wait for news, and look
			// again now and then in case a notification was lost.
			if !ss.waitNotify(ctx, idleRecheck) {
				return
			}
			continue
		}
		if ss.run(ctx, ex) {
			delay = time.Second
			continue
		}
		// The execution neither ended nor moved on (a request refused
		// or unanswered): back off before trying it again, so a service
		// that keeps refusing is not asked in a tight loop.
		if !ss.waitNotify(ctx, delay) {
			return
		}
		delay = min(2*delay, time.Minute)
	}
}

func (c *Client) isParked(ex *JobExecution) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.parked[execKey(ex)]
}

// prepare decides how ex starts. resumed: IN_PROGRESS and not started by
// this process; attempt: the agent starts that ran it, this one included.
func (c *Client) prepare(ex *JobExecution) (resumed bool, attempt int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := execKey(ex)
	if n, ok := c.started[k]; ok {
		return false, n
	}
	attempt = 1
	if ex.Status == string(InProgress) {
		resumed = true
		prev, _ := strconv.Atoi(ex.StatusDetails[detailAttempt])
		attempt = max(prev, 1) + 1
	}
	c.started[k] = attempt
	return resumed, attempt
}

func (c *Client) setBusy(id string) {
	c.mu.Lock()
	c.busy = id
	c.mu.Unlock()
}

// keepResult remembers a result that could not be reported.
func (c *Client) keepResult(ex *JobExecution, res Result) {
	c.mu.Lock()
	c.unreported[execKey(ex)] = res
	c.mu.Unlock()
}

// takeResult returns a result kept for ex, if any.
func (c *Client) takeResult(ex *JobExecution) (Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, ok := c.unreported[execKey(ex)]
	delete(c.unreported, execKey(ex))
	return res, ok
}

// forget drops what the client kept of an execution that has ended.
func (c *Client) forget(ex *JobExecution) {
	c.mu.Lock()
	delete(c.started, execKey(ex))
	delete(c.unreported, execKey(ex))
	c.mu.Unlock()
}

func (c *Client) park(ex *JobExecution) {
	c.mu.Lock()
	c.parked[execKey(ex)] = true
	c.mu.Unlock()
}

// run is one execution, from QUEUED or IN_PROGRESS to its end. It
// reports whether the execution ended or was left for good (parked);
// false means try again later.
func (ss *session) run(ctx context.Context, ex *JobExecution) bool {
	c := ss.c
	if !validJobID(ex.JobID) {
		c.log.Error("jobs: the service sent a job id that is not one; ignored", "job_id", ex.JobID)
		c.park(ex)
		return true
	}
	log := c.log.With("job_id", ex.JobID, "execution", ex.ExecutionNumber)
	if err := ss.subscribeJob(ctx, ex.JobID); err != nil {
		if ctx.Err() == nil {
			log.Warn("jobs: subscribing to the job's topics failed", "err", err)
		}
		return false
	}
	defer ss.unsubscribeJob(ex.JobID)
	c.setBusy(ex.JobID)
	defer c.setBusy("")
	ej := &execJob{ss: ss, ex: ex, log: log, version: ex.VersionNumber}

	doc, err := parseDocument(ex.JobDocument)
	if err == nil {
		if _, ok := c.ops[doc.operation]; !ok {
			err = fmt.Errorf("unknown operation %q", doc.operation)
			return ej.finish(ctx, Result{Status: Rejected, Details: map[string]string{
				"reason": err.Error(),
				"known":  strings.Join(c.Known(), ","),
			}})
		}
	}
	if err != nil {
		return ej.finish(ctx, Result{Status: Rejected, Details: map[string]string{"reason": err.Error()}})
	}
	op := c.ops[doc.operation]
	log = log.With("operation", doc.operation)
	ej.log = log
	step := doc.stepMinutes
	if step == 0 {
		step = DefaultStepTimeoutMinutes
	}
	ej.step = step

	resumed, attempt := c.prepare(ex)
	ej.attempt = attempt
	if attempt > MaxStarts {
		return ej.finish(ctx, Result{Status: Failed, Details: map[string]string{
			"reason": fmt.Sprintf("the agent stopped %d times while this job was in progress (crash loop, kill -9 or power loss); not resumed again", attempt-1),
		}})
	}
	if res, ok := c.takeResult(ex); ok {
		// This process ran it already; only the report was lost.
		return ej.finish(ctx, res)
	}
	if ex.Status == "QUEUED" {
		if !ej.start(ctx) {
			return false
		}
	} else if err := ej.progress(ctx, ex.StatusDetails, false); err != nil {
		// Tell the service this start took it over: the attempt count
		// and a fresh step timer.
		if ctx.Err() == nil {
			log.Warn("jobs: could not take over the execution", "err", err)
		}
		return errors.Is(err, ErrNotInProgress) // ended meanwhile: move on
	}
	if resumed {
		log.Info("jobs: resuming an execution started before this agent started", "attempt", attempt)
	} else {
		log.Info("jobs: execution started")
	}

	res, ok := ej.runOp(ctx, op, resumed)
	if !ok {
		// The connection ended: the next one takes the execution up
		// again, and reports a result the operation did return.
		if res.Status != "" {
			c.keepResult(ex, res)
		}
		return false
	}
	if res.Status == "" {
		log.Info("jobs: the operation arranged a restart; the execution stays IN_PROGRESS")
		c.park(ex)
		return true
	}
	return ej.finish(ctx, res)
}

// execJob is one execution being run.
type execJob struct {
	ss      *session
	ex      *JobExecution
	log     *slog.Logger
	step    int   // minutes
	attempt int   // agent starts that ran it
	version int64 // versionNumber as last known

	mu      sync.Mutex // guards details and version against Progress
	details map[string]string
}

// runOp runs op with the step timeout. ok is false when the connection
// ended first (the operation was cancelled and nothing is reported).
func (ej *execJob) runOp(ctx context.Context, op Operation, resumed bool) (Result, bool) {
	c := ej.ss.c
	// Cancelled at 90% of the step timeout, so FAILED with its reason
	// reaches the service before the service's own timer makes the
	// execution TIMED_OUT, which says nothing of why.
	limit := time.Duration(ej.step) * c.minute * 9 / 10
	opCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	e := &Execution{
		JobID:         ej.ex.JobID,
		Document:      ej.ex.JobDocument,
		Resumed:       resumed,
		StatusDetails: maps.Clone(ej.ex.StatusDetails),
		Progress: func(pctx context.Context, d map[string]string) error {
			return ej.progress(pctx, d, true)
		},
	}
	done := make(chan Result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ej.log.Error("jobs: operation panicked", "panic", r)
				done <- Result{Status: Failed, Details: map[string]string{"reason": fmt.Sprintf("the operation failed unexpectedly: %v", r)}}
			}
		}()
		done <- op.Run(opCtx, e)
	}()
	// ended judges an operation that returned: a result it gave while
	// cancelled at the step timeout becomes the timeout's FAILED, unless
	// it made it (SUCCEEDED) or arranged a restart.
	ended := func(res Result) (Result, bool) {
		if ctx.Err() != nil && res.Status != "" {
			return res, false
		}
		if opCtx.Err() == context.DeadlineExceeded && res.Status != Succeeded && res.Status != "" {
			return ej.timedOut(), true
		}
		return res, true
	}
	select {
	case res := <-done:
		return ended(res)
	case <-opCtx.Done():
	}
	// Step timeout or the connection ended: the operation's ctx is
	// cancelled; give it a moment to stop.
	grace := time.NewTimer(cancelGrace)
	defer grace.Stop()
	select {
	case res := <-done:
		return ended(res)
	case <-grace.C:
		if ctx.Err() != nil {
			ej.log.Warn("jobs: the operation did not stop after the connection ended")
			return Result{}, false
		}
		ej.log.Warn("jobs: the operation did not stop when cancelled at its step timeout")
	}
	return ej.timedOut(), true
}

func (ej *execJob) timedOut() Result {
	return Result{Status: Failed, Details: map[string]string{
		"reason": fmt.Sprintf("step timeout of %d minutes exceeded; the operation was cancelled", ej.step),
	}}
}

// start moves a QUEUED execution to IN_PROGRESS with start-next. false:
// not started (the next execution is another one now, or the request
// failed); the caller gets the next one again.
func (ej *execJob) start(ctx context.Context) bool {
	ss := ej.ss
	ej.mu.Lock()
	ej.details = map[string]string{detailAttempt: strconv.Itoa(ej.attempt)}
	d := ej.details
	ej.mu.Unlock()
	r, err := ss.request(ctx, ss.c.topics.startNext(), map[string]any{
		"statusDetails":        d,
		"stepTimeoutInMinutes": ej.step,
	})
	if err != nil {
		if ctx.Err() == nil {
			ej.log.Warn("jobs: start-next failed", "err", err)
		}
		return false
	}
	if r.Execution == nil || r.Execution.JobID != ej.ex.JobID || r.Execution.ExecutionNumber != ej.ex.ExecutionNumber {
		ej.log.Info("jobs: another execution came next meanwhile; starting over")
		return false
	}
	ej.version = r.Execution.VersionNumber
	return true
}

// progress reports IN_PROGRESS with details (the operation's, plus the
// attempt count) and restarts the service's step timer.
func (ej *execJob) progress(ctx context.Context, details map[string]string, fromOp bool) error {
	d := maps.Clone(details)
	if d == nil {
		d = map[string]string{}
	}
	if fromOp {
		// Up to 9 of the operation's own: the attempt takes the 10th.
		d = trimDetails(d, maxDetails-1)
	}
	d[detailAttempt] = strconv.Itoa(ej.attempt)
	ej.mu.Lock()
	ej.details = d
	ej.mu.Unlock()
	return ej.update(ctx, InProgress, d)
}

// trimDetails keeps at most n entries (sanitizeDetails' rule).
func trimDetails(d map[string]string, n int) map[string]string {
	if len(d) <= n {
		return d
	}
	s := sanitizeDetails(d) // cuts to maxDetails with a count
	for len(s) > n {
		for k := range s {
			if k != detailsLeftOutKey {
				delete(s, k)
				break
			}
		}
	}
	return s
}

// finish reports the result; a conflict is resolved by getting the
// execution again. false: not reported, kept to be reported next.
func (ej *execJob) finish(ctx context.Context, res Result) bool {
	err := ej.update(ctx, res.Status, res.Details)
	switch {
	case err == nil:
		ej.log.Info("jobs: execution ended", "status", res.Status, "details", res.Details)
		ej.ss.c.forget(ej.ex)
		return true
	case errors.Is(err, ErrNotInProgress):
		ej.log.Warn("jobs: the execution ended on the service before its result was reported (cancelled or timed out)",
			"result", res.Status, "details", res.Details)
		ej.ss.c.forget(ej.ex)
		return true
	default:
		// The connection ended or the service did not answer: the next
		// attempt reports this result again.
		ej.ss.c.keepResult(ej.ex, res)
		if ctx.Err() == nil {
			ej.log.Warn("jobs: reporting the result failed; it is reported again next", "status", res.Status, "err", err)
		}
		return false
	}
}

// update sends one update with expectedVersion. On VersionMismatch the
// execution is got again: still IN_PROGRESS or QUEUED, the update is
// retried with the service's version; ended, ErrNotInProgress.
func (ej *execJob) update(ctx context.Context, st Status, details map[string]string) error {
	ss := ej.ss
	for try := 0; ; try++ {
		ej.mu.Lock()
		ver := ej.version
		ej.mu.Unlock()
		body := map[string]any{
			"status":                   string(st),
			"expectedVersion":          ver,
			"executionNumber":          ej.ex.ExecutionNumber,
			"includeJobExecutionState": true,
		}
		if d := sanitizeDetails(details); d != nil {
			body["statusDetails"] = d
		}
		if st == InProgress {
			body["stepTimeoutInMinutes"] = ej.step
		}
		r, err := ss.request(ctx, ss.c.topics.update(ej.ex.JobID), body)
		if err == nil {
			if r.ExecutionState != nil {
				ej.mu.Lock()
				ej.version = r.ExecutionState.VersionNumber
				ej.mu.Unlock()
			}
			return nil
		}
		switch {
		case isCode(err, CodeTerminalStateReached, CodeResourceNotFound):
			return fmt.Errorf("%w: %v", ErrNotInProgress, err)
		case isCode(err, CodeVersionMismatch, CodeInvalidStateTransition) && try < 3:
			cur, gerr := ss.getJob(ctx, ej.ex.JobID, ej.ex.ExecutionNumber)
			if gerr != nil {
				return gerr
			}
			if cur.Status != "QUEUED" && cur.Status != string(InProgress) {
				return fmt.Errorf("%w: it is %s", ErrNotInProgress, cur.Status)
			}
			ej.log.Info("jobs: execution version moved on the service; retrying with its version", "version", cur.VersionNumber)
			ej.mu.Lock()
			ej.version = cur.VersionNumber
			ej.mu.Unlock()
		default:
			return err
		}
	}
}
