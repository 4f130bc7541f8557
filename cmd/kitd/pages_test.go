package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFileKB is RssFile from /proc/self/status: pages of files mapped,
// this test binary's among them.
func rssFileKB(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// The test binary releases its own pages, as `kitd run` does, and goes on
// running: code and read-only data are mapped back as they are used,
// written data is untouched.
func TestReleaseStartupPages(t *testing.T) {
	written := []string{"kept"} // on the heap; package data checked below
	before := rssFileKB(t)
	n, err := releaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFileKB(t)
	// At least the code and the read-only data of this binary.
	if n < 1<<20 {
		t.Errorf("released %d bytes of address range, want the binary's code and read-only data", n)
	}
	// Under qemu-user the guest's mappings are the emulator's business
	// (it may ignore the advice), and RssFile is the emulator's.
	if os.Getenv("KITD_TEST_EMULATED") == "" && after >= before {
		t.Errorf("RssFile %d kB before, %d kB after: nothing released", before, after)
	}
	// Still runs, and what it wrote is still there.
	if written[0] != "kept" || version != "dev" {
		t.Fatalf("data changed: %q, version %q", written[0], version)
	}
	if r := kitd(t, nil, nil, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "kitd dev") {
		t.Fatalf("kitd version after the release: %+v", r)
	}
	t.Logf("released %d MiB of address range; RssFile %d -> %d kB", n>>20, before, after)
}
