//go:build mosquitto

package publisher

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/testkit"
)

const (
	telemetryTopic = "kits/" + kit + "/telemetry"
	statusTopic    = "kits/" + kit + "/status"
)

// The broker goes away for 30 s (5 s under -short) while the kit keeps
// sampling. The publisher reaches the broker through a proxy that refuses
// connections exactly while the broker is down, so that after the restart
// the observer is subscribed again before the kit can deliver (the broker
// loses subscriptions on restart).
func TestBrokerOutage(t *testing.T) {
	outage := 30 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	b := startBroker(t)
	buf := openBuffer(t)
	px := newRawProxy(t, b)
	obs := observeMosquitto(t, b, buf.Epoch())
	cfg := brokerConfig(b)
	cfg.Broker = px.url()
	opt := testOptions()
	opt.backoffMax = 2 * time.Second
	r := startPublisher(t, cfg, buf, opt)
	a := startAppender(t, buf, 50*time.Millisecond)

	obs.waitFor(t, 10*time.Second, "first readings", func() bool { return len(obs.order) >= 10 })
	px.block()
	// The broker must hand the observer what it acknowledged before it
	// stops (the observer's clean session loses the rest): wait until the
	// publisher has let the connection go, then for every reading the
	// buffer holds as acknowledged.
	testkit.WaitFor(t, 10*time.Second, "the publisher to drop the cut connection", func() bool { return !r.p.Stats().Connected })
	obs.waitAll(t, ackedOf(t, buf, a.taken()), 30*time.Second)
	b.Stop()
	takenAtStop := len(a.taken())
	time.Sleep(outage)
	if st := r.p.Stats(); st.Connected || st.LastError == "" {
		t.Errorf("during the outage: %+v", st)
	}
	// Progress keeps moving while backing off, and the kit keeps
	// sampling into the buffer.
	mark := time.Now()
	testkit.WaitFor(t, 10*time.Second, "progress while backing off", func() bool { return r.p.Progress().After(mark) })
	testkit.WaitFor(t, 10*time.Second, "readings taken during the outage", func() bool { return len(a.taken()) >= takenAtStop+20 })
	b.Restart()
	obs.subscribe(t, b.URL, observerTLS(t, b))
	px.unblock()
	time.Sleep(time.Second)
	a.halt()
	seqs := a.taken()
	obs.waitAll(t, seqs, 30*time.Second)
	dups := obs.check(t, seqs)
	if dups > cfg.MaxInflight {
		t.Errorf("%d duplicates, more than the in-flight window %d", dups, cfg.MaxInflight)
	}
	if st := r.p.Stats(); st.Reconnects < 1 {
		t.Errorf("stats %+v: no reconnect counted", st)
	}
	waitPending(t, buf, 0)
}

// Started while the broker is down, the publisher keeps trying (the buffer
// takes readings from the first second) and delivers everything once the
// broker is up.
func TestStartWhileBrokerDown(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	px := newRawProxy(t, b)
	obs := observeMosquitto(t, b, buf.Epoch())
	px.block()
	cfg := brokerConfig(b)
	cfg.Broker = px.url()
	r := startPublisher(t, cfg, buf, testOptions())
	a := startAppender(t, buf, 20*time.Millisecond)
	testkit.WaitFor(t, 30*time.Second, "a refused connection", func() bool {
		return strings.Contains(r.p.Stats().LastError, "connection refused")
	})
	testkit.WaitFor(t, 30*time.Second, "readings taken while unreachable", func() bool { return len(a.taken()) >= 20 })
	if st := r.p.Stats(); st.Connected {
		t.Errorf("connected while the broker is unreachable: %+v", st)
	}
	px.unblock()
	time.Sleep(500 * time.Millisecond)
	a.halt()
	seqs := a.taken()
	obs.waitAll(t, seqs, 20*time.Second)
	if dups := obs.check(t, seqs); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	if n := r.log.count("connect failed"); n != 1 {
		t.Errorf("%d 'connect failed' lines for identical failures, want 1 (the rest folded)", n)
	}
}

// waitAllMoving waits until every seq was received, for as long as
// readings keep arriving: a loaded machine drains a large backlog slowly,
// and only a stall of the given length fails.
func (c *collector) waitAllMoving(t testing.TB, seqs []uint64, stall time.Duration) {
	t.Helper()
	seen, moved := -1, time.Now()
	for {
		c.mu.Lock()
		n, missing := len(c.order), 0
		for _, s := range seqs {
			if c.count[s] == 0 {
				missing++
			}
		}
		c.mu.Unlock()
		if missing == 0 {
			return
		}
		if n != seen {
			seen, moved = n, time.Now()
		} else if time.Since(moved) > stall {
			t.Fatalf("no reading for %v with %d of %d still missing", stall, missing, len(seqs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ackedOf is the seqs of taken the buffer holds as acknowledged.
func ackedOf(t testing.TB, buf *buffer.Buffer, taken []uint64) []uint64 {
	t.Helper()
	pending := map[uint64]bool{}
	rd := buf.Reader(0, 0)
	for {
		recs, err := rd.Next(1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			pending[rec.Seq] = true
		}
	}
	var acked []uint64
	for _, s := range taken {
		if !pending[s] {
			acked = append(acked, s)
		}
	}
	return acked
}

// A client certificate from another CA: a clear error, and attempts spaced
// by the real backoff (1 s floor), never a tight loop.
func TestWrongClientCert(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	other, err := pki.NewCA(filepath.Join(t.TempDir(), "other"), "some other CA")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := other.Client(kit, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	px := newRawProxy(t, b)
	cfg := brokerConfig(b)
	cfg.Broker = px.url()
	cfg.CertFile, cfg.KeyFile = pair.CertFile, pair.KeyFile
	opt := defaultOptions()
	opt.tick = 100 * time.Millisecond
	appendReadings(t, buf, "air", 5)
	r := startPublisher(t, cfg, buf, opt)
	// Three attempts, so two waits drawn by the real backoff. The proxy
	// stamps each connection before it forwards a byte of it, and the
	// kit's wait starts only once the broker has refused that connection:
	// every gap between stamps is at least a whole wait, however slow the
	// machine (a fixed window of wall time would count attempts that a
	// loaded machine never got round to).
	testkit.WaitFor(t, 60*time.Second, "three connection attempts", func() bool { return px.accepts.Load() >= 3 })
	at := px.acceptTimes()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < opt.backoffMin {
			t.Errorf("attempt %d came %v after attempt %d, under the %v backoff floor: a tight loop", i+1, gap, i, opt.backoffMin)
		}
	}
	st := r.p.Stats()
	if st.Connected || !strings.Contains(st.LastError, "the broker rejected the client certificate "+pair.CertFile) {
		t.Errorf("stats %+v: want a certificate-rejected error naming the file", st)
	}
	if n := r.log.count("connect failed"); n != 1 {
		t.Errorf("%d 'connect failed' lines, want 1 (repeats folded)", n)
	}
	if p := buf.Stats().Pending; p != 5 {
		t.Errorf("%d readings pending, want all 5 kept", p)
	}
}

// What AWS IoT does when the policy denies a publish: the connection is
// closed right after it. Nothing can be delivered; the publisher must back
// off (no reset), keep every reading, and say what is likely wrong, once.
func TestCutAfterPublishPolicyViolation(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	px := newMQTTProxy(t, b)
	px.cutAfterPublishTo = telemetryTopic
	// AWS never acknowledges the denied publish; Mosquitto does, and its
	// PUBACK could race the cut.
	px.dropAcksOf = telemetryTopic
	px.dropAcksConns.Store(1 << 30)
	cfg := brokerConfig(b)
	cfg.Broker = px.url()
	opt := testOptions()
	opt.backoffMin, opt.backoffMax = 50*time.Millisecond, 400*time.Millisecond
	// Every wait drawn at its ceiling, so each can be checked: the ceiling
	// doubles from the floor, and a backoff reset on these losses would
	// keep every wait at 50 ms.
	opt.rand = func(n int64) int64 { return n - 1 }
	// Every loss here comes right after a publish, however long the
	// loaded machine takes to get from the connect to it.
	opt.youngLoss = time.Hour
	appendReadings(t, buf, "air", 20)
	r := startPublisher(t, cfg, buf, opt)
	ms := time.Millisecond
	waits := []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 400 * ms}
	testkit.WaitFor(t, 60*time.Second, "six connections", func() bool { return px.accepts.Load() >= int64(len(waits)+1) })
	// The proxy stamps a connection before forwarding any of it; the wait
	// after its loss lies between that stamp and the next.
	at := px.acceptTimes()
	for i, w := range waits {
		if gap := at[i+1].Sub(at[i]); gap < w {
			t.Errorf("connection %d came %v after connection %d, want at least the %v wait: backoff %v", i+2, gap, i+1, w, waits)
		}
	}
	want := "the broker closed the connection right after a publish to " + telemetryTopic +
		": on AWS IoT this usually means the policy does not allow iot:Publish on it"
	if n := r.log.count(want); n != 1 {
		t.Errorf("likely-cause line logged %d times, want once per streak", n)
	}
	if p := buf.Stats().Pending; p != 20 {
		t.Errorf("%d pending, want all 20 kept (none was acknowledged)", p)
	}
	if st := r.p.Stats(); st.Delivered != 0 {
		t.Errorf("delivered %d without a PUBACK", st.Delivered)
	}
}

// A broker that hangs up after acknowledging each publish: every reading
// still gets through, one reconnect at a time.
func TestCutAfterEachPublish(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	px := newMQTTProxy(t, b)
	px.cutAfterAckOf = telemetryTopic
	cfg := brokerConfig(b)
	cfg.Broker = px.url()
	cfg.MaxInflight = 3
	opt := testOptions()
	opt.backoffMin, opt.backoffMax = 20*time.Millisecond, 100*time.Millisecond
	seqs := appendReadings(t, buf, "air", 25)
	r := startPublisher(t, cfg, buf, opt)
	obs.waitAll(t, seqs, 60*time.Second)
	dups := obs.check(t, seqs)
	conns := px.accepts.Load()
	t.Logf("%d connections, %d duplicates", conns, dups)
	if dups > int(conns)*cfg.MaxInflight {
		t.Errorf("%d duplicates over %d connections: more than a window per connection", dups, conns)
	}
	waitPending(t, buf, 0)
	if r.log.count("the broker closed the connection right after a publish to "+telemetryTopic) != 1 {
		t.Error("likely cause not logged exactly once")
	}
}

// A broker that stops acknowledging: after ack_timeout the connection is
// replaced and the buffer resends.
func TestAckTimeoutForcesReconnect(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	px := newMQTTProxy(t, b)
	px.dropAcksOf = telemetryTopic
	px.dropAcksConns.Store(1)
	cfg := brokerConfig(b)
	cfg.Broker = px.url()
	cfg.AckTimeout = time.Second
	seqs := appendReadings(t, buf, "air", 30)
	r := startPublisher(t, cfg, buf, testOptions())
	obs.waitAll(t, seqs, 20*time.Second)
	waitPending(t, buf, 0)
	dups := obs.check(t, seqs)
	if dups != cfg.MaxInflight {
		t.Errorf("%d duplicates, want exactly the window of %d sent without acks", dups, cfg.MaxInflight)
	}
	if st := r.p.Stats(); st.Reconnects != 1 {
		t.Errorf("stats %+v: want one reconnect", st)
	}
	if r.log.count(errAckTimeout.Error()) == 0 {
		t.Error("ack timeout not logged")
	}
}

// Live first: after an outage with a large backlog, a fresh reading is
// delivered before the backlog is drained.
func TestLiveFirst(t *testing.T) {
	backlog := 20000
	if testing.Short() {
		backlog = 5000
	}
	b := startBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	old := appendReadings(t, buf, "air", backlog)
	cfg := brokerConfig(b)
	r := startPublisher(t, cfg, buf, testOptions())
	obs.waitFor(t, 20*time.Second, "backlog flowing", func() bool { return len(obs.order) >= 10 })

	var fresh []uint64
	for i := 0; i < 3; i++ {
		s := appendReadings(t, buf, "live", 1)[0]
		// Read after the append, so it bounds what was acknowledged when
		// the fresh reading was taken.
		delivered := r.p.Stats().Delivered
		fresh = append(fresh, s)
		appended := time.Now()
		obs.waitFor(t, 60*time.Second, "the fresh reading", func() bool { return obs.count[s] > 0 })
		latency := time.Since(appended)
		obs.mu.Lock()
		// The broker forwards one connection's messages in the order it
		// got them: ahead is how many readings went out before the fresh one.
		ahead := slices.Index(obs.order, s)
		obs.mu.Unlock()
		t.Logf("fresh seq %d arrived %v after it was taken, behind %d readings (%d delivered when it was taken)", s, latency, ahead, delivered)
		// Live first, counted rather than timed: when it was taken, what
		// went out before it was acknowledged (delivered), in the in-flight
		// window, or the one message packed while the window was full. Any
		// more is backlog sent ahead of it.
		if limit := int(delivered) + (cfg.MaxInflight+1)*cfg.Batch.MaxReadings; ahead > limit {
			t.Errorf("fresh reading %d went out behind %d readings, want at most %d: %d acknowledged when it was taken, a window of %d messages and one packed, of up to %d readings",
				s, ahead, limit, delivered, cfg.MaxInflight, cfg.Batch.MaxReadings)
		}
		time.Sleep(50 * time.Millisecond)
	}
	all := append(old, fresh...)
	// However long the backlog takes on this machine (20000 readings
	// under -race on a loaded box took over two minutes), as long as it
	// moves.
	obs.waitAllMoving(t, all, 30*time.Second)
	obs.check(t, all)
	waitPending(t, buf, 0)
	r.stop(t)
}

// ALPN and SNI as AWS IoT needs them on port 443.
func TestALPNAndSNI(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	px := newMQTTProxy(t, b, alpnAWS)
	cfg := brokerConfig(b)
	cfg.Broker = "tls://localhost:" + px.addr()[strings.LastIndex(px.addr(), ":")+1:]
	cfg.ALPN = true
	seqs := appendReadings(t, buf, "air", 10)
	startPublisher(t, cfg, buf, testOptions())
	obs.waitAll(t, seqs, 20*time.Second)
	obs.check(t, seqs)
	h := px.hello.Load()
	if h == nil || h.ServerName != "localhost" || len(h.SupportedProtos) != 1 || h.SupportedProtos[0] != alpnAWS {
		t.Fatalf("client hello %+v: want SNI localhost and ALPN %s", h, alpnAWS)
	}
	if p := px.alpn.Load(); p == nil || *p != alpnAWS {
		t.Fatalf("negotiated %v", p)
	}
	for _, v := range h.SupportedVersions {
		if v < 0x0303 {
			t.Fatalf("offers TLS version %x below 1.2", v)
		}
	}
}

// A stop that comes while the broker's PUBACK of connected:true is on its
// way still flushes what the buffer holds, within the shutdown budget:
// the kit is connected (it once went straight to goodbye, leaving the
// readings for the next start).
func TestStopWhileOnlineStatusUnackedStillFlushes(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	px := newMQTTProxy(t, b)
	px.holdAcksOf = statusTopic
	px.releaseAcks = make(chan struct{})
	cfg := brokerConfig(b)
	cfg.Broker = px.url()
	// The PUBACK has a tenth of this after the stop: 2 s, for a loaded
	// machine's proxy to pass it on.
	cfg.ShutdownTimeout = 20 * time.Second
	seqs := appendReadings(t, buf, "air", 20)
	r := startPublisher(t, cfg, buf, testOptions())
	said := func(prefix string) bool {
		for _, st := range obs.status {
			if strings.HasPrefix(st, prefix) {
				return true
			}
		}
		return false
	}
	obs.waitFor(t, 10*time.Second, "connected:true at the broker", func() bool { return said(`{"state":{"reported":{"connected":true}}`) })
	// Its PUBACK is held: the publisher is still waiting for it. Stop,
	// then let the PUBACK through.
	start := time.Now()
	r.cancel()
	close(px.releaseAcks)
	r.stop(t)
	if d := time.Since(start); d > cfg.ShutdownTimeout {
		t.Errorf("shutdown took %v, over shutdown_timeout %v", d, cfg.ShutdownTimeout)
	}
	// The goodbye follows the flush; once the observer has it, it has
	// what the flush sent.
	obs.waitFor(t, 10*time.Second, "connected:false", func() bool { return said(`{"state":{"reported":{"connected":false}}}`) })
	obs.check(t, seqs)
}

// The Last Will says offline when the connection dies under the kit; a
// clean shutdown says it explicitly, then disconnects (so the broker logs
// a clean disconnect), within the shutdown timeout.
func TestWillAndShutdown(t *testing.T) {
	b := startBroker(t)
	buf := openBuffer(t)
	obs := observeMosquitto(t, b, buf.Epoch())
	px := newRawProxy(t, b)
	cfg := brokerConfig(b)
	cfg.Broker = px.url()
	r := startPublisher(t, cfg, buf, testOptions())
	online := `{"state":{"reported":{"connected":true}}`
	offline := `{"state":{"reported":{"connected":false}}}`
	countStatus := func(s string) int {
		n := 0
		for _, st := range obs.status {
			if strings.HasPrefix(st, s) {
				n++
			}
		}
		return n
	}
	obs.waitFor(t, 10*time.Second, "connected:true", func() bool { return countStatus(online) == 1 })

	px.cutAll() // the network dies under the kit
	obs.waitFor(t, 10*time.Second, "the Last Will", func() bool { return countStatus(offline) == 1 })
	obs.waitFor(t, 10*time.Second, "connected:true again", func() bool { return countStatus(online) == 2 })

	seqs := appendReadings(t, buf, "air", 50)
	start := time.Now()
	r.stop(t)
	if d := time.Since(start); d > cfg.ShutdownTimeout {
		t.Errorf("shutdown took %v, over shutdown_timeout %v", d, cfg.ShutdownTimeout)
	}
	obs.waitFor(t, 5*time.Second, "connected:false on shutdown", func() bool { return countStatus(offline) == 2 })
	obs.mu.Lock()
	last := obs.status[len(obs.status)-1]
	obs.mu.Unlock()
	if last != offline {
		t.Errorf("last status %q, want %q", last, offline)
	}
	// The flush delivered what was appended just before the stop.
	obs.check(t, seqs)

	// Retained: a dashboard subscribing now learns the kit is offline.
	late := observeMosquitto(t, b, buf.Epoch())
	late.waitFor(t, 5*time.Second, "the retained status", func() bool {
		for _, s := range late.status {
			if s == offline {
				return true
			}
		}
		return false
	})
	b.Stop() // the log is only safe to read once the broker is gone
	log := b.Log()
	if !strings.Contains(log, "Client "+kit+" disconnected.") {
		t.Errorf("broker did not log a clean disconnect:\n%s", log)
	}
	// Mosquitto 2.0 words a connection that ended without DISCONNECT as
	// "closed its connection" or "disconnected: <reason>".
	if !strings.Contains(log, "Client "+kit+" disconnected: ") && !strings.Contains(log, "Client "+kit+" closed its connection.") {
		t.Errorf("broker did not log the unclean loss:\n%s", log)
	}
}
