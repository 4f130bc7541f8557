package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// output: https with no mqtt section at all: the config checks, the kit
// POSTs its readings (and its alerts) over mutual TLS with the API key,
// and the status line follows the POSTs.
func TestHTTPSOutput(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA(filepath.Join(dir, "pki"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvPair, _ := ca.Server("server", "127.0.0.1")
	kitPair, _ := ca.Client("kit-001", time.Time{})
	var (
		mu       sync.Mutex
		readings = map[uint64]bool{}
		alerts   []string
		badAuth  int
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("x-api-key") != "k-123" || len(r.TLS.VerifiedChains) == 0 || r.URL.Path != "/topics/kits/kit-001/telemetry" {
			badAuth++
			w.WriteHeader(403)
			return
		}
		var m struct {
			Alert    string
			Readings []struct{ Seq uint64 }
		}
		json.Unmarshal(body, &m)
		if m.Alert != "" {
			alerts = append(alerts, m.Alert)
		}
		for _, rd := range m.Readings {
			readings[rd.Seq] = true
		}
		w.WriteHeader(200)
	}))
	srv.TLS, err = ca.ServerTLS(srvPair)
	if err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()
	keyFile := filepath.Join(dir, "api.key")
	os.WriteFile(keyFile, []byte("k-123\n"), 0o600)
	// Settings a kitd.set-config job left while the kit spoke MQTT: with
	// no publisher to apply them to they wait, they do not crash the run.
	jobsFile := filepath.Join(dir, "jobs.json")
	os.WriteFile(jobsFile, []byte(`{"device":"kit-001","desired":{"mqtt":{"batch":{"max_readings":5}}}}`), 0o640)
	yaml := fmt.Sprintf(`device: { id: kit-001 }
jobs: { state_file: %s }
output: https
https:
  url: %s/topics/kits/kit-001/telemetry?qos=1
  ca_file: %s
  cert_file: %s
  key_file: %s
  api_key_file: %s
  max_readings: 5
buffer: { dir: %s, max_bytes: 16MiB, min_free_bytes: 1MiB }
shadow: { state_file: %s }
sensors:
  - { name: sim, driver: sim, interval: 100ms }
alerts:
  - { name: warm, sensor: sim, quantity: temperature, above: -50 }
`, jobsFile, srv.URL, ca.CAFile, kitPair.CertFile, kitPair.KeyFile, keyFile, filepath.Join(dir, "buffer"), filepath.Join(dir, "shadow.json"))
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte(yaml), 0o600)
	cfg, err := config.Check(path, nil, testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	a, _, stop := start(t, path, cfg, Deps{})
	testkit.WaitFor(t, 20*time.Second, "20 readings and the alert POSTed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(readings) >= 20 && len(alerts) == 1
	})
	testkit.WaitFor(t, 10*time.Second, "status connected", func() bool { return a.Stats().Connected })
	if a.Shadow() != nil || a.pub.Load() != nil {
		t.Fatal("an MQTT publisher or shadow runs with output: https")
	}
	stop()
	if b, _ := os.ReadFile(jobsFile); !strings.Contains(string(b), `"max_readings":5`) {
		t.Fatalf("the persisted set-config settings were dropped: %s", b)
	}
	mu.Lock()
	defer mu.Unlock()
	if badAuth > 0 {
		t.Fatalf("%d requests without the API key or client certificate", badAuth)
	}
}
