//go:build systemtools

package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The service handling of postinst and prerm only runs on a live system
// (with DPKG_ROOT they stop before it), so these tests run the real
// scripts as on a live system, inside a private mount namespace: /etc,
// /var/lib and /run are empty tmpfs there, systemd looks like it runs
// (/run/systemd/system), and systemctl, runuser (which runs kitd config
// check) and systemd-sysusers are stand-ins that log their calls. Nothing
// of this machine is touched but a copy of /etc/alternatives (for awk).

// live is one run of a maintainer script in such a namespace.
type live struct {
	out, errOut string
	calls       []string // the stand-ins' command lines
	etcKitd     string   // "MODE UID:GID" of /etc/kitd afterwards, if any
	err         error
}

const harness = `set -u
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/lib
# awk and friends are /etc/alternatives links: keep them.
cp -a /etc/alternatives "$ALT"
mount -t tmpfs tmpfs /etc
cp -a "$ALT" /etc/alternatives
mkdir -p /run/systemd/system
echo 'kitd:x:990:985:kitd:/var/lib/kitd:/usr/sbin/nologin' >/etc/passwd
rc=0
PATH="$FAKE:$PATH" sh "$SCRIPT" "$@" || rc=$?
[ -d /etc/kitd ] && stat -c '%a %u:%g' /etc/kitd >"$STATE"
exit $rc
`

// fakes: systemctl answers is-enabled and is-active as told by
// KITD_ENABLED and KITD_ACTIVE (0 yes), runuser fails the config check
// with a field error unless KITD_CHECK is 0.
var fakes = map[string]string{
	"systemctl": `echo "systemctl $*" >>"$CALLS"
case "$*" in
*is-enabled*) exit "$KITD_ENABLED" ;;
*is-active*) exit "$KITD_ACTIVE" ;;
esac
exit 0`,
	"runuser": `echo "runuser $*" >>"$CALLS"
[ "$KITD_CHECK" = 0 ] && exit 0
echo "mqtt.key_file: /etc/kitd/private.pem.key: no such file or directory" >&2
exit 2`,
	"systemd-sysusers": `echo "systemd-sysusers $*" >>"$CALLS"`,
}

func runLive(t *testing.T, script string, env map[string]string, args ...string) live {
	t.Helper()
	needTools(t, "unshare", "mount", "stat")
	dir := t.TempDir()
	fake := filepath.Join(dir, "bin")
	if err := os.Mkdir(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range fakes {
		if err := os.WriteFile(filepath.Join(fake, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	abs, err := filepath.Abs(filepath.Join("scripts", script))
	if err != nil {
		t.Fatal(err)
	}
	calls, state := filepath.Join(dir, "calls"), filepath.Join(dir, "state")
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", harness, "sh"}, args...)...)
	cmd.Env = append(os.Environ(), "FAKE="+fake, "SCRIPT="+abs, "CALLS="+calls, "STATE="+state, "ALT="+filepath.Join(dir, "alternatives"))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	r := live{err: cmd.Run()}
	r.out, r.errOut = out.String(), errOut.String()
	if b, err := os.ReadFile(calls); err == nil {
		r.calls = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	if b, err := os.ReadFile(state); err == nil {
		r.etcKitd = strings.TrimSpace(string(b))
	}
	return r
}

func (r live) called(prefix string) bool {
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

// An upgrade whose new version fails config check leaves the running
// agent alone and says so on stderr; dpkg sees success.
func TestPostinstUpgradeWithFailingCheckKeepsAgentRunning(t *testing.T) {
	r := runLive(t, "postinst", map[string]string{"KITD_ENABLED": "0", "KITD_ACTIVE": "0", "KITD_CHECK": "2"}, "configure", "1.0.0")
	if r.err != nil {
		t.Fatalf("postinst failed (%v): dpkg would leave the package half-configured\nstdout:\n%s\nstderr:\n%s", r.err, r.out, r.errOut)
	}
	if r.called("systemctl stop") || r.called("systemctl restart") || r.called("systemctl start") {
		t.Errorf("postinst stopped or restarted the running agent although the new config check failed: %q", r.calls)
	}
	if !r.called("runuser -u kitd -- /usr/bin/kitd config check -c /etc/kitd/config.yaml") {
		t.Errorf("config check not run as the service's user: %q", r.calls)
	}
	for _, want := range []string{"NOT restarted", "keeps running and collecting", "mqtt.key_file: /etc/kitd/private.pem.key", "systemctl restart kitd"} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.errOut)
		}
	}
	if r.etcKitd != "750 0:985" {
		t.Errorf("/etc/kitd is %q, want 750 0:985 (root:kitd)", r.etcKitd)
	}
}

func TestPostinstUpgradeWithPassingCheckRestarts(t *testing.T) {
	r := runLive(t, "postinst", map[string]string{"KITD_ENABLED": "0", "KITD_ACTIVE": "0", "KITD_CHECK": "0"}, "configure", "1.0.0")
	if r.err != nil || !r.called("systemctl restart kitd.service") {
		t.Fatalf("postinst: %v, calls %q\n%s%s", r.err, r.calls, r.out, r.errOut)
	}
}

// A fresh install (or an upgrade of a stopped agent) with a failing
// check is not started; the next steps are printed.
func TestPostinstFreshInstallWithFailingCheckDoesNotStart(t *testing.T) {
	r := runLive(t, "postinst", map[string]string{"KITD_ENABLED": "0", "KITD_ACTIVE": "3", "KITD_CHECK": "2"}, "configure")
	if r.err != nil {
		t.Fatalf("postinst: %v\n%s%s", r.err, r.out, r.errOut)
	}
	if r.called("systemctl restart") || r.called("systemctl start") {
		t.Errorf("started with a failing config: %q", r.calls)
	}
	if !strings.Contains(r.out, "installed and enabled but not started") {
		t.Errorf("no next steps:\n%s", r.out)
	}
}

// prerm stops the agent on remove, never on upgrade: the new postinst
// decides whether to restart it.
func TestPrermStopsOnRemoveOnly(t *testing.T) {
	env := map[string]string{"KITD_ENABLED": "0", "KITD_ACTIVE": "0", "KITD_CHECK": "0"}
	if r := runLive(t, "prerm", env, "upgrade", "1.1.0"); r.err != nil || len(r.calls) != 0 && r.calls[0] != "" {
		t.Errorf("prerm upgrade: %v, calls %q (want none)", r.err, r.calls)
	}
	if r := runLive(t, "prerm", env, "remove"); r.err != nil || !r.called("systemctl stop kitd.service") || !r.called("systemctl disable kitd.service") {
		t.Errorf("prerm remove: %v, calls %q", r.err, r.calls)
	}
}
