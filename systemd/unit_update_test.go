package systemd

import (
	"strings"
	"testing"
)

// Self-update (update/doc.go) runs installed versions from
// /var/lib/kitd/update: the unit must let the agent write there and exec
// what it wrote, and must restart the agent after the update's restart.
func TestUnitAllowsSelfUpdate(t *testing.T) {
	d := unitDirectives(t)
	if got := d["StateDirectory"]; len(got) != 1 || got[0] != "kitd" {
		t.Errorf("StateDirectory=%q: updates live in /var/lib/kitd/update (STATE_DIRECTORY)", got)
	}
	for _, k := range []string{"NoExecPaths", "ReadOnlyPaths", "InaccessiblePaths", "TemporaryFileSystem"} {
		for _, v := range d[k] {
			if v == "/" || strings.Contains(v, "/var") {
				t.Errorf("%s=%s: /var/lib/kitd/update must stay writable and executable", k, v)
			}
		}
	}
	// execve is in @system-service; a filter removing @process would
	// deny the launcher's exec and its trial child.
	for _, v := range d["SystemCallFilter"] {
		if strings.HasPrefix(v, "~") && (strings.Contains(v, "@process") || strings.Contains(v, "execve")) {
			t.Errorf("SystemCallFilter=%s: the launcher needs execve and fork", v)
		}
	}
	// The launcher proxies the trial child's notifications as the main
	// process's; NotifyAccess=none would drop them.
	if got := d["NotifyAccess"]; len(got) != 1 || got[0] == "none" {
		t.Errorf("NotifyAccess=%q", got)
	}
	// A trial's end is decided by the launcher, not systemd's restart
	// policy, but the update's own restart must be restarted.
	if got := d["Restart"]; len(got) != 1 || (got[0] != "on-failure" && got[0] != "always") {
		t.Errorf("Restart=%q: the update's restart (a failure status) must bring the agent back", got)
	}
}
