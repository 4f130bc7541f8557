// Package jobse2e holds the process tests of kitd's AWS IoT Jobs operations:
// the kitd binary, built by TestMain, against the in-process broker with
// mutual TLS and the Jobs emulator, the test playing systemd: it starts
// kitd again after it exits for a kitd.restart, and after a kill -9. They
// need Go alone (no Mosquitto), so they run in `go test ./...`; under
// qemu-user (KITD_TEST_EMULATED) they are left to the native run, as in
// e2e, since the test binary cannot exec an ARM kitd without binfmt.
package jobse2e
