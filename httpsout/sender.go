package httpsout

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/telemetry"
)

// Stats is a snapshot of the sender's counters since it was made.
type Stats struct {
	// Delivered counts records acknowledged after a 2xx; Posts the 2xx
	// answers.
	Delivered, Posts int64
	// Retries counts failed attempts that are tried again.
	Retries int64
	// Rejected counts records the server refused for good (discarded,
	// explained in band); Discarded those that could not be sent at all
	// (do not decode, larger than max_bytes).
	Rejected, Discarded int64
	// OK is true while the last POST succeeded.
	OK bool
	// LastError is the latest failure.
	LastError string
}

// options are the timings tests shrink.
type options struct {
	backoffMin, backoffMax time.Duration
	// maxRetryAfter caps what a server's Retry-After may ask for.
	maxRetryAfter time.Duration
	idle          time.Duration // wake at least this often when idle
	now           func() time.Time
	rand          func(n int64) int64
}

func defaultOptions() options {
	return options{
		backoffMin:    time.Second,
		backoffMax:    5 * time.Minute,
		maxRetryAfter: 15 * time.Minute,
		idle:          time.Second,
		now:           time.Now,
		rand:          cryptoRand,
	}
}

// cryptoRand is jitter that kits booted from one image do not share.
func cryptoRand(n int64) int64 {
	if n <= 0 {
		return 0
	}
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		return n / 2
	}
	return v.Int64()
}

// Sender POSTs the buffer's records to Config.URL.
type Sender struct {
	cfg    Config
	opt    options
	device string
	buf    *buffer.Buffer
	clk    telemetry.Clock
	log    *slog.Logger
	client *http.Client
	apiKey string

	// Run's goroutine only: records read and not yet resolved, oldest
	// first (Data copied), and how many of them the next POST may carry
	// (halved while a rejected batch is narrowed down).
	r     *buffer.Reader
	queue []buffer.Record
	limit int

	delivered, posts, retries, rejected, discarded atomic.Int64
	ok                                             atomic.Bool
	lastErr                                        atomic.Pointer[string]
	progress                                       atomic.Int64
}

// Deps are what a Sender is built from besides its config section.
type Deps struct {
	// Device is device.id, the "device" of every message.
	Device string
	// Buffer holds the records to send; Clock stamps the batches.
	Buffer *buffer.Buffer
	Clock  telemetry.Clock
	// Log may be nil (discard); the Sender adds component=https.
	Log *slog.Logger
}

// New checks cfg (files included) and returns a Sender of the buffer's
// records. Nothing is sent until Run.
func New(cfg Config, deps Deps) (*Sender, error) {
	return newSender(cfg, deps, defaultOptions())
}

func newSender(cfg Config, deps Deps, opt options) (*Sender, error) {
	device, buf, clk, log := deps.Device, deps.Buffer, deps.Clock, deps.Log
	var errs []error
	if err := cfg.ValidateSettings(); err != nil {
		errs = append(errs, err)
	}
	if err := telemetry.CheckDevice(device); err != nil {
		errs = append(errs, fmt.Errorf("device.id: %w", err))
	}
	if buf == nil || clk == nil {
		errs = append(errs, errors.New("httpsout: a buffer and a clock are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a, err := cfg.load()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		TLSClientConfig:     a.tls,
		TLSHandshakeTimeout: cfg.Timeout,
		MaxIdleConns:        1,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	s := &Sender{
		cfg: cfg, opt: opt, device: device, buf: buf, clk: clk,
		log: log.With("component", "https"),
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout,
			// A redirect could take the API key elsewhere: never followed;
			// the 3xx is retried and logged so https.url gets fixed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		apiKey: a.apiKey,
		limit:  cfg.MaxReadings,
	}
	s.touch()
	return s, nil
}

// Stats reads the counters.
func (s *Sender) Stats() Stats {
	st := Stats{Delivered: s.delivered.Load(), Posts: s.posts.Load(), Retries: s.retries.Load(),
		Rejected: s.rejected.Load(), Discarded: s.discarded.Load(), OK: s.ok.Load()}
	if e := s.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

// Progress is when Run's loop last went round (for the watchdog): it
// goes round at least every second, even while waiting out a backoff.
func (s *Sender) Progress() time.Time { return time.Unix(0, s.progress.Load()) }

func (s *Sender) touch() { s.progress.Store(time.Now().UnixNano()) }

// Run sends until ctx ends. It returns nil then; it returns an error only
// when the buffer cannot be read.
func (s *Sender) Run(ctx context.Context) error {
	defer s.client.CloseIdleConnections()
	s.r = s.buf.Reader(0, 0)
	notify := s.buf.Notify()
	failures := 0
	defer s.flush()
	for {
		s.touch()
		if ctx.Err() != nil {
			return nil
		}
		m, err := s.next()
		if err != nil {
			return err
		}
		if m == nil {
			if !s.sleep(ctx, s.opt.idle, notify) {
				return nil
			}
			continue
		}
		wait, err := s.post(ctx, m)
		switch {
		case err == nil:
			failures = 0
			s.ok.Store(true)
			s.ack(m)
		case errors.Is(err, ErrRejected):
			failures = 0
			s.reject(m, err)
		case ctx.Err() != nil:
			return nil
		default:
			s.ok.Store(false)
			s.noteErr(err)
			s.retries.Add(1)
			if wait <= 0 {
				wait = s.backoff(failures)
			}
			failures++
			s.log.Warn("POST failed; retrying", "err", err, "readings", len(m.seqs), "in", wait.Round(time.Millisecond))
			if !s.sleep(ctx, wait, nil) {
				return nil
			}
		}
	}
}

// flushTimeout bounds the flush at a clean stop, as mqtt.shutdown_timeout
// (5 s by default) bounds the publisher's; the agent's overall stop
// deadline is above both.
const flushTimeout = 5 * time.Second

// flush sends what is pending once more after Run's ctx ended, as the
// publisher does at a clean stop, so a stop leaves behind nothing a
// working server would take. Failures are retried within flushTimeout,
// briefly; what is left stays in the buffer for the next start.
func (s *Sender) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	failures := 0
	for ctx.Err() == nil {
		m, err := s.next()
		if err != nil || m == nil {
			return
		}
		wait, err := s.post(ctx, m)
		switch {
		case err == nil:
			failures = 0
			s.ack(m)
		case errors.Is(err, ErrRejected):
			s.reject(m, err)
		default:
			if wait <= 0 {
				wait = s.backoff(failures)
			}
			failures++
			t := time.NewTimer(min(wait, time.Until(deadlineOf(ctx))))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// sleep waits d (or a notify) in steps of at most a second, so Progress
// keeps moving; false when ctx ended.
func (s *Sender) sleep(ctx context.Context, d time.Duration, notify <-chan struct{}) bool {
	end := time.Now().Add(d)
	for {
		s.touch()
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		t := time.NewTimer(min(left, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-notify:
			t.Stop()
			return true
		case <-t.C:
		}
	}
}

// backoff is full jitter: a random wait up to min(max, min·2^n).
func (s *Sender) backoff(n int) time.Duration {
	ceil := s.opt.backoffMin
	for i := 0; i < n && ceil < s.opt.backoffMax; i++ {
		ceil *= 2
	}
	ceil = min(ceil, s.opt.backoffMax)
	return s.opt.backoffMin/2 + time.Duration(s.opt.rand(int64(ceil)))
}

func (s *Sender) noteErr(err error) {
	msg := err.Error()
	s.lastErr.Store(&msg)
}

// message is one POST body and the records it carries.
type message struct {
	body []byte
	seqs []uint64
}

// fill reads ahead until the queue holds a full POST's worth or the
// buffer has nothing more now.
func (s *Sender) fill() error {
	for len(s.queue) < s.cfg.MaxReadings {
		recs, err := s.r.Next(s.cfg.MaxReadings-len(s.queue), int(s.cfg.MaxBytes)*2)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		for _, r := range recs {
			s.queue = append(s.queue, buffer.Record{Seq: r.Seq, Data: append([]byte(nil), r.Data...)})
		}
	}
	return nil
}

// next packs the next POST from the front of the queue: an alert alone,
// else up to limit readings and gaps within max_bytes. nil: nothing to
// send now.
func (s *Sender) next() (*message, error) {
	if err := s.fill(); err != nil {
		return nil, err
	}
	epoch := s.buf.Epoch()
	for len(s.queue) > 0 {
		v, err := telemetry.ParseRecord(s.queue[0].Data)
		if err != nil {
			s.log.Error("discarding a buffered record that does not decode", "seq", s.queue[0].Seq, "err", err)
			s.drop(1, &s.discarded)
			continue
		}
		s.restamp(&v)
		if v.IsAlert() {
			body := telemetry.AppendRecordMessage(nil, s.device, epoch, s.queue[0].Seq, &v)
			return &message{body: body, seqs: []uint64{s.queue[0].Seq}}, nil
		}
		body := telemetry.AppendBatchStart(make([]byte, 0, 4096), s.device, epoch)
		var seqs []uint64
		limit := int(s.cfg.MaxBytes)
		for i := 0; i < len(s.queue) && len(seqs) < s.limit; i++ {
			if i > 0 {
				if v, err = telemetry.ParseRecord(s.queue[i].Data); err != nil || v.IsAlert() {
					break // sent on its own turn
				}
				s.restamp(&v)
			}
			mark := len(body)
			if len(seqs) > 0 {
				body = append(body, ',')
			}
			body = telemetry.AppendRecordItem(body, s.queue[i].Seq, &v)
			if len(body)+telemetry.BatchEndLen > limit {
				body = body[:mark]
				break
			}
			seqs = append(seqs, s.queue[i].Seq)
		}
		if len(seqs) == 0 {
			s.log.Error("discarding a reading larger than https.max_bytes", "seq", s.queue[0].Seq, "sensor", v.Sensor(), "limit", limit)
			s.drop(1, &s.discarded)
			continue
		}
		return &message{body: telemetry.AppendBatchEnd(body), seqs: seqs}, nil
	}
	return nil, nil
}

// restamp corrects an unsynced record of this boot once the clock synced.
func (s *Sender) restamp(v *telemetry.RecordView) {
	if v.Clock == telemetry.ClockUnsynced && s.clk.Synced() {
		v.Restamp(s.clk.Now(), s.clk.Mono(), s.clk.Boot())
	}
}

// drop discards the first n queued records (explained in band) and
// counts them in c.
func (s *Sender) drop(n int, c *atomic.Int64) {
	seqs := make([]uint64, n)
	for i := range n {
		seqs[i] = s.queue[i].Seq
	}
	s.queue = s.queue[n:]
	c.Add(int64(n))
	if err := s.buf.Discard(buffer.ReasonDiscarded, seqs...); err != nil {
		s.log.Error("buffer discard failed", "err", err)
	}
}

func (s *Sender) ack(m *message) {
	s.queue = s.queue[len(m.seqs):]
	s.limit = s.cfg.MaxReadings
	if err := s.buf.Ack(m.seqs...); err != nil {
		s.log.Error("buffer ack failed; these readings will be sent again", "err", err)
		return
	}
	s.delivered.Add(int64(len(m.seqs)))
	s.posts.Add(1)
}

// reject narrows a refused batch down: halves until a single record is
// refused, which is discarded.
func (s *Sender) reject(m *message, err error) {
	s.noteErr(err)
	if len(m.seqs) > 1 {
		s.limit = max(1, len(m.seqs)/2)
		s.log.Warn("POST rejected; trying its readings in smaller batches to find the one the server refuses", "err", err, "readings", len(m.seqs), "next", s.limit)
		return
	}
	s.log.Error("POST rejected for good; discarding the record (reported in band as discarded)", "err", err, "seq", m.seqs[0])
	s.drop(1, &s.rejected)
	// The rest of a narrowed batch goes back to full size gradually: one
	// success resets the limit.
}

// maxErrorBody is how much of a refusal the log shows.
const maxErrorBody = 200

// post sends m once. nil: 2xx. A RejectedError: refused for good. Any
// other error is retried, after wait when the server said (Retry-After).
func (s *Sender) post(ctx context.Context, m *message) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(m.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kitd")
	if s.apiKey != "" {
		req.Header.Set("x-api-key", s.apiKey)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return 0, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return s.retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("httpsout: %s: %d %s", s.cfg.URL, code, oneLine(head))
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusNotFound || code == http.StatusProxyAuthRequired:
		// The kit's setup, not the readings: a wrong key, a wrong path
		// (API Gateway answers 403 "Missing Authentication Token"), a
		// missing route. Discarding would throw the whole backlog away
		// for a config mistake; keep it and retry until it is fixed.
		return 0, fmt.Errorf("httpsout: %s: %d %s (fix https.url or https.api_key_file; the readings are kept)", s.cfg.URL, code, oneLine(head))
	case code >= 400:
		return 0, &RejectedError{Status: code, Body: oneLine(head)}
	}
	// 3xx (redirects are not followed) and anything else: retried.
	return 0, fmt.Errorf("httpsout: %s: unexpected %d %s (fix https.url)", s.cfg.URL, code, resp.Header.Get("Location"))
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date;
// 0 when absent or unreadable; capped at maxRetryAfter.
func (s *Sender) retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		d = time.Duration(min(n, int64(s.opt.maxRetryAfter/time.Second)+1)) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(s.opt.now())
		if d <= 0 {
			return 0
		}
	} else {
		return 0
	}
	return min(d, s.opt.maxRetryAfter)
}

func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}
