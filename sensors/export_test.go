package sensors

import "context"

// Step runs one attempt of the named sensor as its loop would, and Close
// closes its driver: sensors_test benchmarks the per-reading path with
// the sim driver, which package sensors' own tests cannot import.
func (s *Scheduler) Step(ctx context.Context, name string) { s.attempt(ctx, s.byName[name]) }

func (s *Scheduler) Close(ctx context.Context, name string) { s.closeDevice(ctx, s.byName[name]) }
