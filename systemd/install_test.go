//go:build systemtools

package systemd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestInstallScriptIsClean(t *testing.T) {
	needTools(t, "shellcheck")
	run(t, ".", "shellcheck", "install.sh")
}

func TestInstallIntoStagingRoot(t *testing.T) {
	needTools(t, "systemd-sysusers", "systemctl")
	stage := newStage(t)
	bin := filepath.Join(t.TempDir(), "kitd")
	write(t, bin, "#!/bin/sh\necho v1\n", 0o755)
	installStaged(t, stage, bin)

	for path, mode := range map[string]os.FileMode{
		"usr/bin/kitd":                        0o755,
		"usr/lib/systemd/system/kitd.service": 0o644,
		"usr/lib/sysusers.d/kitd.conf":        0o644,
		"usr/lib/udev/rules.d/60-kitd.rules":  0o644,
		"etc/kitd/config.yaml":                0o644,
		"etc/kitd":                            0o750 | os.ModeDir,
		"var/lib/kitd":                        0o750 | os.ModeDir,
	} {
		fi, err := os.Stat(filepath.Join(stage, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %s, want %s", path, fi.Mode(), mode)
		}
	}
	if got, want := read(t, filepath.Join(stage, "etc/kitd/config.yaml")), read(t, "../configs/kit.yaml"); got != want {
		t.Error("etc/kitd/config.yaml is not configs/kit.yaml")
	}

	passwd := read(t, filepath.Join(stage, "etc/passwd"))
	user := entry(passwd, "kitd")
	if user == nil || user[5] != "/var/lib/kitd" || user[6] != "/usr/sbin/nologin" {
		t.Fatalf("kitd user: %q in\n%s", user, passwd)
	}
	group := read(t, filepath.Join(stage, "etc/group"))
	// The existing i2c group keeps its gid and members; gpio is created.
	if i2c := entry(group, "i2c"); i2c == nil || i2c[2] != "994" || !strings.Contains(i2c[3], "pi") || !strings.Contains(i2c[3], "kitd") {
		t.Errorf("i2c group: %q, want gid 994 with pi and kitd", i2c)
	}
	if gpio := entry(group, "gpio"); gpio == nil || !strings.Contains(gpio[3], "kitd") {
		t.Errorf("gpio group: %q, want it created with kitd", gpio)
	}
	fi, err := os.Stat(filepath.Join(stage, "var/lib/kitd"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); itoa(st.Uid) != user[2] || itoa(st.Gid) != user[3] {
		t.Errorf("var/lib/kitd owned by %d:%d, want kitd %s:%s", st.Uid, st.Gid, user[2], user[3])
	}
	// /etc/kitd is root:kitd 0750, the mode the unit's
	// ConfigurationDirectoryMode names: the agent reads it, no one else.
	fi, err = os.Stat(filepath.Join(stage, "etc/kitd"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || itoa(st.Gid) != user[3] {
		t.Errorf("etc/kitd owned by %d:%d, want root:kitd 0:%s", st.Uid, st.Gid, user[3])
	}
	if got := unitDirectives(t)["ConfigurationDirectoryMode"]; len(got) != 1 || got[0] != "0750" {
		t.Errorf("the unit's ConfigurationDirectoryMode=%q disagrees with install.sh's 0750", got)
	}
	// And the docs say the same.
	for file, want := range map[string]string{
		"../README.md":       "`/etc/kitd` is `root:kitd 0750`",
		"../docs/install.md": "`/etc/kitd` is `root:kitd 0750`",
		"../docs/aws.md":     "install -d -m 0750 -o root -g kitd /etc/kitd",
	} {
		if !strings.Contains(read(t, file), want) {
			t.Errorf("%s does not say %s", file, want)
		}
	}
	link, err := os.Readlink(filepath.Join(stage, "etc/systemd/system/multi-user.target.wants/kitd.service"))
	if err != nil || link != "/usr/lib/systemd/system/kitd.service" {
		t.Errorf("service not enabled: link %q, %v", link, err)
	}
}

// Running it again is an upgrade: the binary is replaced; the config the
// admin edited, the certificates, users and groups are left as they are.
func TestInstallAgainKeepsConfigAndCertificates(t *testing.T) {
	needTools(t, "systemd-sysusers", "systemctl")
	stage := newStage(t)
	dir := t.TempDir()
	v1, v2 := filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	write(t, v1, "#!/bin/sh\necho v1\n", 0o755)
	write(t, v2, "#!/bin/sh\necho v2\n", 0o755)
	installStaged(t, stage, v1)

	conf := filepath.Join(stage, "etc/kitd/config.yaml")
	key := filepath.Join(stage, "etc/kitd/private.pem.key")
	write(t, conf, "device: { id: kit-042 }\n", 0o644)
	write(t, key, "-----BEGIN PRIVATE KEY-----\n", 0o640)
	passwd, group := read(t, filepath.Join(stage, "etc/passwd")), read(t, filepath.Join(stage, "etc/group"))
	// The admin disabled the service: an upgrade leaves it so, as the
	// package's does (postinst is told it is an upgrade).
	wants := filepath.Join(stage, "etc/systemd/system/multi-user.target.wants/kitd.service")
	if err := os.Remove(wants); err != nil {
		t.Fatal(err)
	}

	out := installStaged(t, stage, v2)
	if _, err := os.Lstat(wants); err == nil {
		t.Error("running install.sh again re-enabled a service the admin had disabled")
	}
	if !strings.Contains(out, "keeping the existing") {
		t.Errorf("second install did not say it kept the config:\n%s", out)
	}
	if got := read(t, filepath.Join(stage, "usr/bin/kitd")); got != "#!/bin/sh\necho v2\n" {
		t.Errorf("binary not replaced: %q", got)
	}
	if got := read(t, conf); got != "device: { id: kit-042 }\n" {
		t.Errorf("config overwritten: %q", got)
	}
	if got := read(t, key); got != "-----BEGIN PRIVATE KEY-----\n" {
		t.Errorf("key changed: %q", got)
	}
	if fi, _ := os.Stat(key); fi.Mode() != 0o640 {
		t.Errorf("key mode %s, want 0640", fi.Mode())
	}
	if read(t, filepath.Join(stage, "etc/passwd")) != passwd || read(t, filepath.Join(stage, "etc/group")) != group {
		t.Error("second install changed users or groups")
	}
}

// entry returns the fields of name's line in a passwd or group file.
func entry(file, name string) []string {
	for _, line := range strings.Split(file, "\n") {
		if f := strings.Split(line, ":"); f[0] == name {
			return f
		}
	}
	return nil
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
