//go:build kitd_nodemo

package demo

import "context"

// Run returns ErrNotBuilt: this build (-tags kitd_nodemo, the release
// binaries) has no demo. Its broker, emulators and PKI helper would cost
// `kitd run` their code pages and their package initialisation (the Jobs
// emulator alone allocated 178 KB at start, kept for the process's life).
func Run(context.Context, Options) error { return ErrNotBuilt }
