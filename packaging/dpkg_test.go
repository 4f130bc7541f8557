//go:build systemtools

package packaging

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// dpkgRoot is a staging root with an empty dpkg database and the users a
// Raspberry Pi OS image has (an i2c group with its own gid already).
func dpkgRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for path, content := range map[string]string{
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
		"etc/passwd":             "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n",
		"etc/group":              "root:x:0:\ni2c:x:994:pi\npi:x:1000:\n",
	} {
		if err := os.WriteFile(filepath.Join(root, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// dpkg runs dpkg on the staging root. The maintainer scripts run on this
// machine with DPKG_ROOT set (--force-script-chrootless), which is the
// way they are written to work; systemd is not in the staged database.
func dpkg(t *testing.T, root string, args ...string) string {
	t.Helper()
	base := []string{"--root=" + root, "--force-script-chrootless", "--force-depends",
		"--force-confdef", "--force-confold", "--log=/dev/null"}
	return run(t, nil, "dpkg", append(base, args...)...)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Install, upgrade, remove and purge the .deb in a staging root: the
// maintainer scripts create the user and groups, own the state
// directory, enable the unit on a fresh install only, keep the admin's
// config and certificates, and purge only what is the package's.
func TestDebLifecycleInStagingRoot(t *testing.T) {
	deb := theDeb(t)
	root := dpkgRoot(t)
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/kitd.service")
	conf := filepath.Join(root, "etc/kitd/config.yaml")
	key := filepath.Join(root, "etc/kitd/private.pem.key")

	out := dpkg(t, root, "-i", deb)
	if !strings.Contains(out, "Setting up kitd") {
		t.Fatalf("install:\n%s", out)
	}
	passwd := read(t, filepath.Join(root, "etc/passwd"))
	if !strings.Contains(passwd, "\nkitd:x:") {
		t.Fatalf("no kitd user after install:\n%s", passwd)
	}
	group := read(t, filepath.Join(root, "etc/group"))
	if !strings.Contains(group, "i2c:x:994:") || !strings.Contains(group, "\ngpio:x:") {
		t.Errorf("groups after install (i2c must keep gid 994, gpio created):\n%s", group)
	}
	if !exists(wants) {
		t.Error("a fresh install did not enable kitd.service")
	}
	if fi, err := os.Stat(filepath.Join(root, "var/lib/kitd")); err != nil || fi.Mode() != 0o750|os.ModeDir {
		t.Errorf("var/lib/kitd: %v, %v", fi, err)
	}
	// root:kitd 0750, as the unit (ConfigurationDirectoryMode), install.sh
	// and the docs have it.
	kitdGid := strings.Split(strings.SplitN(passwd, "\nkitd:x:", 2)[1], ":")[1]
	if fi, err := os.Stat(filepath.Join(root, "etc/kitd")); err != nil || fi.Mode() != 0o750|os.ModeDir {
		t.Errorf("etc/kitd: %v, %v", fi, err)
	} else if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || strconv.Itoa(int(st.Gid)) != kitdGid {
		t.Errorf("etc/kitd owned by %d:%d, want root:kitd 0:%s", st.Uid, st.Gid, kitdGid)
	}

	// The admin configures the kit, and (for this test) disables the
	// service; an upgrade must respect both.
	if err := os.WriteFile(conf, []byte("device: { id: kit-042 }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	// and the agent has buffered readings.
	segment := filepath.Join(root, "var/lib/kitd/buffer/00000000000000000001.seg")
	if err := os.MkdirAll(filepath.Dir(segment), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segment, []byte("readings"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(wants); err != nil {
		t.Fatal(err)
	}
	dpkg(t, root, "-i", deb)
	if got := read(t, conf); got != "device: { id: kit-042 }\n" {
		t.Errorf("upgrade replaced the edited conffile: %q", got)
	}
	if exists(wants) {
		t.Error("an upgrade re-enabled a service the admin had disabled")
	}
	if read(t, filepath.Join(root, "etc/passwd")) != passwd {
		t.Error("an upgrade changed the users")
	}

	if err := os.Symlink("/usr/lib/systemd/system/kitd.service", wants); err != nil {
		t.Fatal(err)
	}
	dpkg(t, root, "--remove", "kitd")
	if exists(wants) {
		t.Error("remove left kitd.service enabled")
	}
	if exists(filepath.Join(root, "usr/bin/kitd")) {
		t.Error("remove left the binary")
	}
	if !exists(conf) || !exists(segment) {
		t.Error("remove (not purge) deleted the config or the buffered readings")
	}

	out = dpkg(t, root, "--purge", "kitd")
	// Purge says what it leaves behind, and why.
	for _, want := range []string{"purged /var/lib/kitd", "private key", "never deletes key material", "rm -r " + root + "/etc/kitd"} {
		if !strings.Contains(out, want) {
			t.Errorf("purge output lacks %q:\n%s", want, out)
		}
	}
	if exists(filepath.Join(root, "var/lib/kitd")) {
		t.Error("purge left /var/lib/kitd")
	}
	if exists(conf) {
		t.Error("purge left the conffile")
	}
	if got := read(t, key); got != "-----BEGIN PRIVATE KEY-----\n" {
		t.Error("purge touched the admin's key")
	}
}
