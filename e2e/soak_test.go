//go:build mosquitto

package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// TestSoakBrokerFlaps runs kitd with 10 sensors at 100ms while the broker
// goes away and comes back over and over, sampling kitd's RSS and open file
// descriptors every second. Neither may grow without bound, the backlog
// must drain once the broker stays up, and every seq must be delivered or
// explained. KITD_SOAK sets the flapping time (default 20s; `make soak`
// runs 10m).
func TestSoakBrokerFlaps(t *testing.T) {
	flapFor := 20 * time.Second
	if v := os.Getenv("KITD_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("KITD_SOAK=%q: %v", v, err)
		}
		flapFor = d
	}
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	o := newObserver(t, b)
	// The broker flaps for the kit only: the observer, connected directly,
	// misses nothing, so every seq it lacks is the kit's doing.
	px := newFlapProxy(t, b.Addr())
	k := newKit(t, b, "kit-001", kitOptions{sensors: simSensors(10, "100ms"), brokerURL: "tls://" + px.addr()})
	end := k.run()
	pid := k.pid()

	type sample struct {
		at       time.Duration
		rssKB    int
		fds      int
		received int
	}
	var samples []sample
	start := time.Now()
	take := func() {
		samples = append(samples, sample{time.Since(start), rssKB(t, pid), fdCount(t, pid), o.count()})
	}
	up := true
	for next := time.Now(); time.Since(start) < flapFor; next = next.Add(time.Second) {
		time.Sleep(time.Until(next))
		take()
		// Down 2 s out of every 5: long enough for a backlog and a
		// reconnect with backoff, short enough for many flaps.
		phase := int(time.Since(start)/time.Second) % 5
		switch {
		case up && phase == 3:
			px.cut(true)
			up = false
		case !up && phase == 0:
			px.cut(false)
			up = true
		}
	}
	px.cut(false)
	taken := k.bufferStats().LastSeq
	// The reconnect backoff may have grown to its 2 min ceiling.
	testkit.WaitFor(t, 150*time.Second, "the backlog drained after the flapping", func() bool { return uint64(o.count()) >= taken })
	take()
	end(false)
	if st := k.bufferStats(); st.Pending != 0 {
		t.Errorf("%d readings pending after the broker stayed up and kitd stopped", st.Pending)
	}
	assertExplained(t, o)

	var lines []string
	for _, s := range samples {
		lines = append(lines, fmt.Sprintf("%5.0fs rss %6d kB fds %3d received %6d", s.at.Seconds(), s.rssKB, s.fds, s.received))
	}
	t.Logf("samples:\n%s", strings.Join(lines, "\n"))
	// After the first quarter (warm-up: buffers, TLS, the first backlog),
	// neither memory nor descriptors may keep growing.
	base := samples[len(samples)/4]
	var maxRSS, maxFD int
	for _, s := range samples[len(samples)/4:] {
		maxRSS, maxFD = max(maxRSS, s.rssKB), max(maxFD, s.fds)
	}
	if maxFD > base.fds+4 {
		t.Errorf("open descriptors grew from %d to %d while the broker flapped", base.fds, maxFD)
	}
	if maxRSS > base.rssKB*3/2+4096 {
		t.Errorf("RSS grew from %d kB to %d kB while the broker flapped", base.rssKB, maxRSS)
	}
}

// flapProxy stands between the kit and the broker; cut(true) drops every
// connection through it and refuses new ones (closing them at once) until
// cut(false), as a broker that goes away and comes back.
type flapProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func newFlapProxy(t *testing.T, target string) *flapProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flapProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.cut(true)
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *flapProxy) addr() string { return p.ln.Addr().String() }

func (p *flapProxy) serve(c net.Conn) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		c.Close()
		return
	}
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, s)
	p.mu.Unlock()
	go func() { io.Copy(s, c); s.Close() }()
	io.Copy(c, s)
	c.Close()
}

func (p *flapProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

func rssKB(t *testing.T, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		var kb int
		if n, _ := fmt.Sscanf(line, "VmRSS: %d kB", &kb); n == 1 {
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

func fdCount(t *testing.T, pid int) int {
	ents, err := os.ReadDir(filepath.Join("/proc", fmt.Sprint(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
