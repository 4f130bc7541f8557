package publisher

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// dropFirst is what AWS IoT does to a certificate from a CA registered for
// just-in-time provisioning: it drops the first connection (while it
// registers the certificate) and accepts the next ones. Later connections
// are relayed to the broker unchanged.
func dropFirst(t *testing.T, target string) (url string, drops *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	drops = &atomic.Int32{}
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if n == 0 {
				// Read the ClientHello, then hang up.
				_, _ = c.Read(make([]byte, 512))
				c.Close()
				drops.Add(1)
				continue
			}
			go func() {
				b, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				go func() { _, _ = io.Copy(b, c); b.Close() }()
				_, _ = io.Copy(c, b)
				c.Close()
			}()
		}
	}()
	return "tls://" + ln.Addr().String(), drops
}

func TestJITPFirstConnectionDropIsNormal(t *testing.T) {
	broker := testkit.StartBroker(t, nil)
	pair := broker.Client(kit)
	url, drops := dropFirst(t, broker.URL[len("tls://"):])
	cfg := DefaultConfig()
	cfg.Broker = url
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = broker.CA.CAFile, pair.CertFile, pair.KeyFile
	buf := openBuffer(t)
	opt := testOptions()
	opt.backoffMin, opt.backoffMax = 50*time.Millisecond, time.Hour
	// The ServerName must still be 127.0.0.1 for the broker's certificate.
	r := startPublisher(t, cfg, buf, opt)
	testkit.WaitFor(t, 20*time.Second, "connected after the dropped first connection", func() bool { return r.p.Stats().Connected })
	if drops.Load() != 1 {
		t.Fatalf("%d connections dropped", drops.Load())
	}
	if n := r.log.count("normal once for a certificate issued by a CA registered for just-in-time provisioning"); n != 1 {
		t.Errorf("JITP line logged %d times, want 1:\n%s", n, r.log.String())
	}
	if r.log.count("connect failed") != 0 || r.log.count("policy") != 0 || r.log.count("rejected") != 0 {
		t.Errorf("the JITP drop was taken for a failure:\n%s", r.log.String())
	}
	r.stop(t)
}

func TestDroppedAtConnectOnlyForEOF(t *testing.T) {
	p := &Publisher{}
	if err := p.markDropped(io.EOF); !errors.Is(err, ErrDroppedAtConnect) {
		t.Errorf("EOF: %v", err)
	}
	if err := p.markDropped(ErrCertRejected); errors.Is(err, ErrDroppedAtConnect) {
		t.Errorf("a rejected certificate taken for a JITP drop")
	}
	if err := p.markDropped(errors.New("connection refused")); errors.Is(err, ErrDroppedAtConnect) {
		t.Errorf("a refused connection taken for a JITP drop")
	}
}
