// Package arm holds the smoke test of the GOARCH=arm binary under qemu
// (smoke_test.go, build tag armsmoke: `make smoke-arm`). It is apart from
// the unit tests because it builds and emulates a whole agent, and the
// unit tests already run for GOARCH=arm under qemu (`make test-arm`).
package arm
