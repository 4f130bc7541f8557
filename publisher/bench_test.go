//go:build mosquitto

package publisher

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/proctest"
	"github.com/kitd-dev/kitd/telemetry"
)

// Backlog drain: a backlog of benchBacklog readings delivered to a local
// Mosquitto over mutual TLS with max_publish_rate 0, beside a bare paho
// client publishing the same messages with the same in-flight window. The
// figure is readings/s; b.N only repeats the whole drain. Run with
// -benchtime=1x: one drain of a million readings is the measurement.
//
//	go test -run '^$' -bench 'Drain|BarePaho' -benchtime=1x ./publisher/
//
// Each also reports the CPU time per reading of this process (client-ns)
// and of Mosquitto (broker-ns) while it ran: with two cores, a drain that
// keeps both busy takes about (client + broker) / 2 per reading, so the
// client CPU the agent spends reading, decoding and encoding (which the
// bare client, sending pre-encoded bytes, does not) shows up in its time.

func benchBacklog() int {
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

var benchBatches = []int{1, 100}

func BenchmarkDrain(b *testing.B) {
	br := startBroker(b)
	n := benchBacklog()
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var total cpuUse
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				total.add(drainOnce(b, br, n, batch))
			}
			total.report(b, n*b.N)
		})
	}
}

// drainOnce builds a backlog in a fresh buffer and times its delivery,
// connect included, until every reading is acknowledged.
func drainOnce(b *testing.B, br *mosquittotest.Broker, n, batch int) cpuUse {
	dir, err := os.MkdirTemp("", "kitd-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bcfg := buffer.DefaultConfig()
	bcfg.Dir = dir
	bcfg.Sync = buffer.SyncNever
	bcfg.MinFreeBytes = 0
	bcfg.MaxBytes = 1 << 30
	buf, err := buffer.Open(bcfg, buffer.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Close()
	appendReadings(b, buf, "bench", n)

	cfg := brokerConfig(br)
	cfg.Batch.MaxReadings = batch
	log, _ := newLog(b)
	p, err := newPublisher(cfg, Deps{Device: kit, Buffer: buf, Clock: newTestClock(true), Log: log}, testOptions())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.StartTimer()
	start := startCPU(b, br)
	go func() { done <- p.Run(ctx) }()
	for p.Stats().Delivered < int64(n) {
		time.Sleep(time.Millisecond)
	}
	use := start.since(b)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if st := p.Stats(); st.Delivered != int64(n) || st.Reconnects != 0 {
		b.Fatalf("stats %+v", st)
	}
	return use
}

func BenchmarkBarePaho(b *testing.B) {
	br := startBroker(b)
	n := benchBacklog()
	cfg := brokerConfig(br)
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			msgs := encodeBacklog(b, n, batch)
			var total cpuUse
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				total.add(bareOnce(b, br, msgs, cfg.MaxInflight))
			}
			total.report(b, n*b.N)
		})
	}
}

// encodeBacklog makes the messages the publisher would send for the
// benchmark's backlog (the same readings, seqs, device and epoch length).
func encodeBacklog(tb testing.TB, n, batch int) [][]byte {
	const epoch = "0123456789abcdef"
	var msgs [][]byte
	var msg []byte
	inMsg := 0
	for i := 0; i < n; i++ {
		seq := uint64(i + 1)
		rec, err := telemetry.MarshalRecord(nil, reading("bench", i%1000))
		if err != nil {
			tb.Fatal(err)
		}
		v, err := telemetry.ParseRecord(rec)
		if err != nil {
			tb.Fatal(err)
		}
		if batch == 1 {
			msgs = append(msgs, telemetry.AppendRecordMessage(nil, kit, epoch, seq, &v))
			continue
		}
		if inMsg == 0 {
			msg = telemetry.AppendBatchStart(nil, kit, epoch)
		} else {
			msg = append(msg, ',')
		}
		msg = telemetry.AppendRecordItem(msg, seq, &v)
		if inMsg++; inMsg == batch || i == n-1 {
			msgs = append(msgs, telemetry.AppendBatchEnd(msg))
			inMsg = 0
		}
	}
	return msgs
}

// bareOnce publishes msgs with a plain paho client keeping at most window
// messages unacknowledged, connect included in the time.
func bareOnce(b *testing.B, br *mosquittotest.Broker, msgs [][]byte, window int) cpuUse {
	tlsCfg, err := br.CA.ClientTLS(br.Certs[kit])
	if err != nil {
		b.Fatal(err)
	}
	o := mqtt.NewClientOptions().AddBroker(br.URL).SetClientID(kit).SetTLSConfig(tlsCfg).
		SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(false).SetProtocolVersion(4)
	b.StartTimer()
	start := startCPU(b, br)
	cl := mqtt.NewClient(o)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	slots := make(chan struct{}, window)
	toks := make(chan mqtt.Token, window)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for tok := range toks {
			<-tok.Done()
			if tok.Error() != nil {
				b.Error(tok.Error())
			}
			<-slots
		}
	}()
	topic := "kits/" + kit + "/telemetry"
	for _, m := range msgs {
		slots <- struct{}{}
		toks <- cl.Publish(topic, 1, false, m)
	}
	close(toks)
	<-done
	use := start.since(b)
	b.StopTimer()
	cl.Disconnect(100)
	return use
}

// cpuUse is the wall time of a timed section and the CPU time this process
// and the broker used in it.
type cpuUse struct {
	wall, client, broker time.Duration
}

func (u *cpuUse) add(v cpuUse) {
	u.wall += v.wall
	u.client += v.client
	u.broker += v.broker
}

func (u cpuUse) report(b *testing.B, readings int) {
	b.ReportMetric(float64(readings)/u.wall.Seconds(), "readings/s")
	b.ReportMetric(float64(u.client.Nanoseconds())/float64(readings), "client-ns/reading")
	b.ReportMetric(float64(u.broker.Nanoseconds())/float64(readings), "broker-ns/reading")
	b.ReportMetric(0, "ns/op")
}

// cpuMark is where a timed section started.
type cpuMark struct {
	br     *mosquittotest.Broker
	at     time.Time
	client time.Duration
	broker time.Duration
}

func startCPU(b *testing.B, br *mosquittotest.Broker) cpuMark {
	m := cpuMark{br: br, client: selfCPU(b), broker: mustCPU(b, br.Pid())}
	m.at = time.Now()
	return m
}

func (m cpuMark) since(b *testing.B) cpuUse {
	wall := time.Since(m.at)
	return cpuUse{wall: wall, client: selfCPU(b) - m.client, broker: mustCPU(b, m.br.Pid()) - m.broker}
}

func mustCPU(b *testing.B, pid int) time.Duration {
	d, err := proctest.CPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPack is the agent's own ceiling: reading the backlog from the
// buffer, decoding, re-stamping and encoding messages, with no network.
// The drain cannot beat it; the bare client does not pay it.
func BenchmarkPack(b *testing.B) {
	n := benchBacklog()
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			buf := openBuffer(b)
			appendReadings(b, buf, "bench", n)
			cfg := DefaultConfig()
			cfg.Broker = "tcp://127.0.0.1:1"
			cfg.Batch.MaxReadings = batch
			p, err := newPublisher(cfg, Deps{Device: kit, Buffer: buf, Clock: newTestClock(true)}, testOptions())
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				d := &drainer{p: p, live: &cursor{done: true}, backlog: &cursor{r: buf.Reader(0, 0)}, epoch: buf.Epoch()}
				got := 0
				for {
					m, err := d.next()
					if err != nil {
						b.Fatal(err)
					}
					if m == nil {
						break
					}
					got += len(m.seqs)
				}
				if got != n {
					b.Fatalf("packed %d of %d", got, n)
				}
			}
			b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "readings/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
