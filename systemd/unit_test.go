package systemd

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// unitDirectives parses kitd.service into key -> values, in order.
func unitDirectives(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("kitd.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("kitd.service: not a directive: %q", line)
		}
		d[k] = append(d[k], v)
	}
	return d
}

// The unit's promises, each of which a later edit could quietly break.
func TestUnitDirectives(t *testing.T) {
	d := unitDirectives(t)
	for k, want := range map[string]string{
		"Type":                     "notify",
		"NotifyAccess":             "main",
		"ExecStart":                "/usr/bin/kitd run -c /etc/kitd/config.yaml",
		"Restart":                  "on-failure",
		"RestartPreventExitStatus": "2", // a config error must not restart in a loop
		"User":                     "kitd",
		"SupplementaryGroups":      "i2c gpio dialout",
		"StateDirectory":           "kitd",
		"ConfigurationDirectory":   "kitd",
		"NoNewPrivileges":          "yes",
		"ProtectSystem":            "strict",
		"DevicePolicy":             "closed",
		"CapabilityBoundingSet":    "",
		"RestrictAddressFamilies":  "AF_UNIX AF_INET AF_INET6", // no AF_NETLINK: 1-Wire is read from sysfs
		// Never give up (no start limit), but back off: 5s growing to
		// 5min over 6 restarts.
		"StartLimitIntervalSec":      "0",
		"RestartSec":                 "5s",
		"RestartSteps":               "6",
		"RestartMaxDelaySec":         "5min",
		"ConfigurationDirectoryMode": "0750", // as the package and install.sh make /etc/kitd
		"StateDirectoryMode":         "0750",
	} {
		if got := d[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	// A burst limit would make the unit fail for good once reached.
	if v, set := d["StartLimitBurst"]; set {
		t.Errorf("StartLimitBurst=%q: with StartLimitIntervalSec=0 it means nothing; remove it", v)
	}
	if w := d["WatchdogSec"]; len(w) != 1 || w[0] == "" || w[0] == "0" {
		t.Errorf("WatchdogSec=%q, want a timeout", w)
	}
	// No globs: char-* would allow every character device.
	if got, want := d["DeviceAllow"], []string{"char-i2c rw", "char-gpiochip rw", "char-ttyS rw", "char-ttyAMA rw", "char-ttyUSB rw", "char-ttyACM rw"}; !slices.Equal(got, want) {
		t.Errorf("DeviceAllow=%q, want %q", got, want)
	}
	// The agent must start with no network and no time sync.
	for _, k := range []string{"Wants", "Requires", "After", "BindsTo"} {
		for _, v := range d[k] {
			for _, bad := range []string{"network-online.target", "time-sync.target"} {
				if strings.Contains(v, bad) {
					t.Errorf("%s=%s: the agent must start without network or time sync", k, v)
				}
			}
		}
	}
	// adjtimex(2) tells the clock package whether NTP synced; ProtectClock
	// and a filter without adjtimex deny it, and every reading would be
	// stamped unsynced forever.
	if _, set := d["ProtectClock"]; set {
		t.Error("ProtectClock= denies adjtimex, which the clock package needs read-only")
	}
	if !slices.Contains(d["SystemCallFilter"], "adjtimex") || d["SystemCallFilter"][len(d["SystemCallFilter"])-1] != "adjtimex" {
		t.Errorf("SystemCallFilter=%q: adjtimex must be allowed last, after the ~@privileged removal", d["SystemCallFilter"])
	}
	if _, set := d["ProcSubset"]; set {
		t.Error("ProcSubset= hides /proc/sys/kernel/random/boot_id, which the clock package reads")
	}
}

// newerKeys are directives of systemd 254; older versions warn about
// each once and ignore it, which the unit is written to survive.
var newerKeys = []string{"RestartSteps", "RestartMaxDelaySec"}

var exposure = regexp.MustCompile(`Overall exposure level for kitd\.service: (\d+\.\d+) (\w+)`)
