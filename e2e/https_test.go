//go:build mosquitto

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// httpsObserver is an HTTPS back end (mutual TLS from pki, client
// certificates verified) that answers every seventh POST with 503 and
// records the rest in an observer, by seq.
func httpsObserver(t *testing.T, ca *pki.CA, o *observer) *httptest.Server {
	t.Helper()
	srvPair, err := ca.Server("https-server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(r.TLS.VerifiedChains) == 0 || r.TLS.VerifiedChains[0][0].Subject.CommonName != "kit-001" {
			w.WriteHeader(403)
			return
		}
		if n.Add(1)%7 == 0 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(503)
			return
		}
		var m wireReading
		if err := json.Unmarshal(body, &m); err != nil || m.Device != "kit-001" || m.Epoch == "" {
			o.t.Errorf("POST body is not a kit-001 batch: %v: %s", err, body)
			w.WriteHeader(400)
			return
		}
		now := time.Now()
		o.mu.Lock()
		for _, rd := range m.Readings {
			if rd.Gap != nil {
				o.gaps = append(o.gaps, fmt.Sprintf("%d-%d %s", rd.Gap.From, rd.Gap.To, rd.Gap.Reason))
			} else if rd.Sensor == "" || len(rd.Values) == 0 {
				o.t.Errorf("reading misses a wire-contract field: %s", body)
			}
			o.seqs[rd.Seq]++
			o.arrivals = append(o.arrivals, arrival{at: now, seq: rd.Seq})
		}
		o.mu.Unlock()
		w.WriteHeader(200)
	}))
	srv.TLS, err = ca.ServerTLS(srvPair)
	if err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// output: https end to end with the kitd binary: a back end that fails
// now and then, a kill -9 in the middle of delivery and a restart: every
// seq taken arrives at least once, and the seqs the kill left reserved
// are explained in band, as over MQTT.
func TestHTTPSKillNine(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	o := &observer{t: t, seqs: map[uint64]int{}}
	srv := httpsObserver(t, b.CA, o)
	k := newKit(t, b, "kit-001", kitOptions{})
	pair := b.Certs["kit-001"]
	cfg := fmt.Sprintf(`device: { id: kit-001 }
output: https
https:
  url: %s/topics/kits/kit-001/telemetry?qos=1
  ca_file: %s
  cert_file: %s
  key_file: %s
  max_readings: 10
buffer: { dir: %s, max_bytes: 64MiB, min_free_bytes: 1MiB, sync: interval, sync_interval: 1s }
shadow: { state_file: %s }
sensors:
%s`, srv.URL, b.CA.CAFile, pair.CertFile, pair.KeyFile, k.bufferDir(), filepath.Join(k.dir, "shadow.json"), simSensors(3, "100ms"))
	if err := os.WriteFile(k.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var runs []lifetime
	end := k.run()
	testkit.WaitFor(t, 30*time.Second, "100 readings POSTed", func() bool { return o.count() >= 100 })
	r := end(true)
	runs = append(runs, r)
	end = k.run()
	testkit.WaitFor(t, 30*time.Second, "resend after the kill", func() bool { return len(o.missing(r.first, r.last)) == 0 })
	n := o.count()
	testkit.WaitFor(t, 30*time.Second, "fresh readings after the restart", func() bool { return o.count() >= n+30 })
	runs = append(runs, end(false))
	taken := assertDelivered(t, o, runs)
	assertExplained(t, o)
	t.Logf("%d readings taken, %d delivered, %d duplicates, gap records %v", taken, o.count(), o.duplicates(), o.gapReasons())
}
