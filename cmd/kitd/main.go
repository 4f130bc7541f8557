// Command kitd is the sensor-kit agent. This file and its siblings only
// wire: flags to options, options to packages, errors to exit codes.
package main

import (
	"os"
)

// Stamped at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ()))
}
