package httpsout

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/telemetry"
)

const kit = "kit-1"

type clk struct{}

func (clk) Now() time.Time      { return time.Now() }
func (clk) Mono() time.Duration { return time.Hour }
func (clk) Boot() uint64        { return 1 }
func (clk) Synced() bool        { return true }

func openBuffer(t *testing.T) *buffer.Buffer {
	t.Helper()
	cfg := buffer.DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Sync = buffer.SyncNever
	cfg.MinFreeBytes = 0
	b, err := buffer.Open(cfg, buffer.Deps{GapRecord: func(g buffer.Gap) []byte {
		return telemetry.MarshalGap(nil, telemetry.Gap{From: g.From, To: g.To, Reason: g.Reason.String(), Time: time.Now()})
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func appendReading(t *testing.T, b *buffer.Buffer, sensor string, v float64) uint64 {
	t.Helper()
	rec, err := telemetry.MarshalRecord(nil, telemetry.Reading{Sensor: sensor, Time: time.Now(), Boot: 1, Mono: time.Hour,
		Values: map[string]float64{"temperature": v}})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := b.Append(rec)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// server is the HTTPS test server with mutual TLS from pki; handle
// decides each answer.
type server struct {
	*httptest.Server
	ca   *pki.CA
	kit  pki.Pair
	mu   sync.Mutex
	reqs []request
}

type request struct {
	at     time.Time
	apiKey string
	client string // the verified client certificate's CN
	body   []byte
	status int
}

func startServer(t *testing.T, handle func(n int, body []byte) (int, http.Header)) *server {
	t.Helper()
	ca, err := pki.NewCA(filepath.Join(t.TempDir(), "pki"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvPair, err := ca.Server("server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	kitPair, err := ca.Client(kit, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ca: ca, kit: kitPair}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cn := ""
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			cn = r.TLS.VerifiedChains[0][0].Subject.CommonName
		}
		s.mu.Lock()
		n := len(s.reqs)
		s.mu.Unlock()
		code, h := handle(n, body)
		if code == 0 { // cut the connection: a network failure
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
		} else {
			for k, v := range h {
				w.Header()[k] = v
			}
			w.WriteHeader(code)
			io.WriteString(w, `{"message":"test answer"}`)
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, request{at: time.Now(), apiKey: r.Header.Get("x-api-key"), client: cn, body: body, status: code})
		s.mu.Unlock()
	}))
	s.TLS, err = ca.ServerTLS(srvPair) // client certificates required and verified
	if err != nil {
		t.Fatal(err)
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func (s *server) config(t *testing.T) Config {
	key := filepath.Join(t.TempDir(), "api.key")
	os.WriteFile(key, []byte("s3cret-key\n"), 0o640)
	cfg := DefaultConfig()
	cfg.URL = s.URL + "/prod/readings"
	cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.APIKeyFile = s.ca.CAFile, s.kit.CertFile, s.kit.KeyFile, key
	cfg.Timeout = 5 * time.Second
	return cfg
}

func testOptions() options {
	o := defaultOptions()
	o.backoffMin, o.backoffMax = 10*time.Millisecond, 100*time.Millisecond
	o.idle = 50 * time.Millisecond
	return o
}

func run(t *testing.T, cfg Config, buf *buffer.Buffer) (*Sender, func()) {
	t.Helper()
	s, err := newSender(cfg, Deps{Device: kit, Buffer: buf, Clock: clk{}}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return s, stop
}

type wireBatch struct {
	Device, Epoch string
	Readings      []struct {
		Sensor string
		Seq    uint64
		Values map[string]float64
		Gap    *struct {
			From, To uint64
			Reason   string
		}
	}
}

// The server fails (503, then a cut connection), throttles (429 with
// Retry-After: 1), rejects (400) every batch holding a reading of sensor
// "bad", and accepts the rest. Every reading is accounted for by seq:
// delivered in a 2xx answer, or explained in band as discarded; the
// throttle's wait is honoured; every request carried the client
// certificate and the API key.
func TestFailThrottleRejectAccept(t *testing.T) {
	var throttledAt time.Time
	srv := startServer(t, func(n int, body []byte) (int, http.Header) {
		switch n {
		case 0:
			return 503, nil
		case 1:
			return 0, nil
		case 2:
			throttledAt = time.Now()
			return 429, http.Header{"Retry-After": {"1"}}
		}
		if strings.Contains(string(body), `"sensor":"bad"`) {
			return 400, nil
		}
		return 200, nil
	})
	buf := openBuffer(t)
	var good, bad []uint64
	for i := range 500 {
		if i%97 == 50 {
			bad = append(bad, appendReading(t, buf, "bad", float64(i)))
			continue
		}
		good = append(good, appendReading(t, buf, "air", float64(i)))
	}
	cfg := srv.config(t)
	cfg.MaxReadings = 40
	s, stop := run(t, cfg, buf)
	testkit.WaitFor(t, 30*time.Second, "every record delivered or discarded", func() bool {
		return buf.Stats().Pending == 0
	})
	stop()

	delivered := map[uint64]int{}
	explained := map[uint64]string{}
	reqs := srv.requests()
	for i, r := range reqs {
		if r.client != kit || r.apiKey != "s3cret-key" {
			t.Fatalf("request %d: client %q api key %q", i, r.client, r.apiKey)
		}
		if r.status != 200 {
			continue
		}
		var b wireBatch
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatalf("request %d: %v: %s", i, err, r.body)
		}
		if b.Device != kit || b.Epoch != buf.Epoch() || len(b.Readings) == 0 || len(b.Readings) > cfg.MaxReadings {
			t.Fatalf("request %d: device %q epoch %q %d readings", i, b.Device, b.Epoch, len(b.Readings))
		}
		for _, rd := range b.Readings {
			if rd.Gap != nil {
				for q := rd.Gap.From; q <= rd.Gap.To; q++ {
					explained[q] = rd.Gap.Reason
				}
			} else if rd.Sensor == "bad" {
				t.Fatalf("a bad reading was accepted: %s", r.body)
			}
			delivered[rd.Seq]++
		}
	}
	for _, q := range good {
		if delivered[q] == 0 {
			t.Errorf("reading %d never delivered", q)
		}
	}
	for _, q := range bad {
		if explained[q] != "discarded" {
			t.Errorf("rejected reading %d not explained in band (gap %q)", q, explained[q])
		}
	}
	st := s.Stats()
	if st.Rejected != int64(len(bad)) || st.Retries < 3 || !st.OK {
		t.Errorf("stats %+v, want %d rejected and 3+ retries", st, len(bad))
	}
	if len(reqs) < 4 || reqs[3].at.Sub(throttledAt) < time.Second {
		t.Errorf("the request after 429 + Retry-After: 1 came %v after it", reqs[3].at.Sub(throttledAt))
	}
	t.Logf("%d requests, %d readings delivered, %d rejected", len(reqs), len(good), len(bad))
}

// An alert record goes alone, as the alert message.
func TestAlertPostedAlone(t *testing.T) {
	srv := startServer(t, func(int, []byte) (int, http.Header) { return 204, nil })
	buf := openBuffer(t)
	appendReading(t, buf, "air", 1)
	rec, _ := telemetry.MarshalAlert(nil, telemetry.Alert{Name: "hot", State: telemetry.AlertFiring, Sensor: "air", Quantity: "temperature", Value: 41, Threshold: 40, ReadingSeq: 1, Time: time.Now()})
	aseq, _ := buf.Append(rec)
	appendReading(t, buf, "air", 2)
	_, stop := run(t, srv.config(t), buf)
	testkit.WaitFor(t, 10*time.Second, "delivered", func() bool { return buf.Stats().Pending == 0 })
	stop()
	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (reading, alert, reading)", len(reqs))
	}
	var a map[string]any
	json.Unmarshal(reqs[1].body, &a)
	if a["alert"] != "hot" || a["state"] != "firing" || a["seq"] != float64(aseq) || a["readings"] != nil {
		t.Fatalf("alert POST %s", reqs[1].body)
	}
}

// A server whose certificate the kit does not trust gets nothing: the
// kit verifies it and keeps the readings for later.
func TestServerVerified(t *testing.T) {
	srv := startServer(t, func(int, []byte) (int, http.Header) { return 200, nil })
	other, _ := pki.NewCA(filepath.Join(t.TempDir(), "other"), "other CA")
	buf := openBuffer(t)
	appendReading(t, buf, "air", 1)
	cfg := srv.config(t)
	cfg.CAFile = other.CAFile
	s, stop := run(t, cfg, buf)
	testkit.WaitFor(t, 10*time.Second, "a failed attempt", func() bool { return s.Stats().Retries > 0 })
	stop()
	if len(srv.requests()) != 0 || buf.Stats().Pending != 1 || !strings.Contains(s.Stats().LastError, "certificate") {
		t.Fatalf("requests %d, pending %d, last error %q", len(srv.requests()), buf.Stats().Pending, s.Stats().LastError)
	}
}

func TestRetryAfter(t *testing.T) {
	o := defaultOptions()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	o.now = func() time.Time { return now }
	s := &Sender{opt: o}
	for h, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"99999":                         15 * time.Minute,
		"Sat, 21 Nov 2026 12:00:30 GMT": 30 * time.Second,
		"Sat, 21 Nov 2026 11:00:00 GMT": 0,
		"Sun, 22 Nov 2026 12:00:00 GMT": 15 * time.Minute,
	} {
		if got := s.retryAfter(h); got != want {
			t.Errorf("Retry-After %q: %v, want %v", h, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	os.WriteFile(open, []byte("k"), 0o644)
	c := DefaultConfig()
	c.URL = "http://example.com/x"
	c.CertFile = "/x.pem"
	c.Timeout = 0
	c.MaxReadings = 0
	err := c.ValidateSettings()
	for _, want := range []string{"url: ", "cert_file: cert_file and key_file go together", "timeout: must be positive", "max_readings: "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	c = DefaultConfig()
	c.URL = "https://example.com/x"
	c.APIKeyFile = open
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "api_key_file: ") || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("world-readable API key: %v", err)
	}
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "k\"") {
		t.Errorf("error quotes the key: %v", err)
	}
	var rej *RejectedError
	if !errors.As(error(&RejectedError{Status: 400}), &rej) || !errors.Is(rej, ErrRejected) {
		t.Fatal("RejectedError does not unwrap to ErrRejected")
	}
}

// A wrong key or path (API Gateway answers both 403) is the kit's setup,
// not its readings: nothing is discarded while it lasts, and once the
// server takes the requests every reading goes out.
func TestForbiddenKeepsTheBacklog(t *testing.T) {
	srv := startServer(t, func(n int, body []byte) (int, http.Header) {
		if n < 5 {
			return 403, nil
		}
		return 200, nil
	})
	buf := openBuffer(t)
	var seqs []uint64
	for i := range 30 {
		seqs = append(seqs, appendReading(t, buf, "air", float64(i)))
	}
	cfg := srv.config(t)
	cfg.MaxReadings = 10
	s, stop := run(t, cfg, buf)
	testkit.WaitFor(t, 30*time.Second, "every record delivered", func() bool { return buf.Stats().Pending == 0 })
	stop()
	if st := s.Stats(); st.Rejected != 0 || st.Discarded != 0 {
		t.Fatalf("a 403 discarded readings: %+v", st)
	}
	if b := buf.Stats(); b.Dropped != 0 {
		t.Fatalf("buffer dropped %d", b.Dropped)
	}
	got := map[uint64]bool{}
	for _, r := range srv.requests() {
		if r.status != 200 {
			continue
		}
		var b wireBatch
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatal(err)
		}
		for _, rd := range b.Readings {
			got[rd.Seq] = true
		}
	}
	for _, q := range seqs {
		if !got[q] {
			t.Fatalf("seq %d not delivered", q)
		}
	}
}
