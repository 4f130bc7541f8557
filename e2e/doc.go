// Package e2e drives the kitd binary the way a kit runs it: a real
// Mosquitto with mutual TLS and a per-kit ACL, a config file, signals
// (SIGTERM, SIGHUP, SIGKILL), and an observer that records every message
// by seq. It holds no logic of the agent's; it checks the contracts.
//
// Its tests need Mosquitto, so they build only with the mosquitto tag
// (`go test -tags mosquitto ./e2e/`; make test-unit sets it), and the
// full-disk test, which mounts a tmpfs, also with roottest.
package e2e
