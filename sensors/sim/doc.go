// Package sim is a simulated sensor for demos and tests: deterministic
// waveforms, one per quantity, that need no hardware and no root.
//
// Each quantity is a plausible base value plus a slow sine. The sine's
// period (10 to 60 minutes), phase and a small offset of the base come
// from an FNV-1a hash of the sensor and quantity names, so two sim sensors
// differ but every run of one sensor gives the same curve. [Value] is the
// curve itself: a test predicts each reading from its timestamp. With
// [Kind] the driver reads the system clock just before the scheduler
// stamps the reading, so Value at the reading's timestamp may differ from
// the reading in the last digit (0.01); [KindAt] with the scheduler's own
// fake clock makes them equal.
//
// Options:
//
//	quantities  list of quantities; default [temperature, humidity]; known:
//	            temperature humidity pressure moisture co2 illuminance
//	            voltage current power
//	fail_every  N: every Nth read (counted across re-opens) fails; 0 never
//	hang        duration every read blocks, ignoring its context, to
//	            exercise the scheduler's abandon path; 0 never
//	open_error  when set, Open fails with this message
//
// Like real hardware, a sim device refuses a second user: opening it while
// it is open, or reading it while a read is in progress, is an error the
// scheduler must never provoke.
package sim
