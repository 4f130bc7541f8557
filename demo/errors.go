package demo

import "errors"

// ErrNotBuilt is returned by Run when kitd was built with -tags kitd_nodemo
// (the release binaries: `make cross`, `make package`), which leaves the
// demo out (broker, emulators, PKI helper) so that `kitd run` carries none
// of it.
var ErrNotBuilt = errors.New("demo: not in this binary: release builds leave the demo out (-tags kitd_nodemo) so that `kitd run` does not carry it; from a source checkout: go run ./cmd/kitd demo")
