package buffer

import (
	"errors"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/datasize"
)

// SyncPolicy says when appended data is fsynced.
type SyncPolicy string

// Sync policies.
const (
	// SyncAlways fsyncs before Append returns; concurrent appends share one
	// fsync (group commit).
	SyncAlways SyncPolicy = "always"
	// SyncInterval fsyncs at most every SyncInterval, and only when
	// something was written since the last fsync.
	SyncInterval SyncPolicy = "interval"
	// SyncNever leaves flushing to the kernel. The seq high-water mark is
	// still fsynced, so seqs never repeat.
	SyncNever SyncPolicy = "never"
)

// Config is the buffer section of the kitd config file.
type Config struct {
	// Dir holds the segments, the cursor, the seq file and the lock file.
	// Default /var/lib/kitd/buffer.
	Dir string `mapstructure:"dir"`
	// MaxBytes bounds the segment files; the oldest segment is dropped
	// to stay below it. Default 256MiB; at least two segments.
	MaxBytes datasize.Size `mapstructure:"max_bytes"`
	// MinFreeBytes is left free on the file system; the oldest segment is
	// dropped to keep it free. Default 64MiB; 0 disables the check.
	MinFreeBytes datasize.Size `mapstructure:"min_free_bytes"`
	// Sync is the fsync policy. Default interval.
	Sync SyncPolicy `mapstructure:"sync"`
	// SyncInterval is how often data is fsynced under SyncInterval, and
	// how often at most the ack cursor is saved under every policy.
	// Default 1s.
	SyncInterval time.Duration `mapstructure:"sync_interval"`
	// SegmentBytes is the size at which a segment file is sealed and a new
	// one started; it is also the largest payload accepted. Default 4MiB.
	SegmentBytes datasize.Size `mapstructure:"segment_bytes"`
}

// Limits on SegmentBytes: small segments make many files and many directory
// fsyncs; segments beyond 1GiB would need 64-bit offsets in int on 32-bit ARM
// and take long to recover.
const (
	minSegmentBytes = 4 * datasize.KiB
	maxSegmentBytes = 1 * datasize.GiB
)

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Dir:          "/var/lib/kitd/buffer",
		MaxBytes:     256 * datasize.MiB,
		MinFreeBytes: 64 * datasize.MiB,
		Sync:         SyncInterval,
		SyncInterval: time.Second,
		SegmentBytes: 4 * datasize.MiB,
	}
}

// Validate reports every invalid field, each error starting with the field's
// key relative to the buffer section.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: must not be empty"))
	}
	segOK := true
	switch {
	case c.SegmentBytes < minSegmentBytes:
		errs = append(errs, fmt.Errorf("segment_bytes: must be at least %s", minSegmentBytes))
		segOK = false
	case c.SegmentBytes > maxSegmentBytes:
		errs = append(errs, fmt.Errorf("segment_bytes: must be at most %s", maxSegmentBytes))
		segOK = false
	}
	if segOK && c.MaxBytes < 2*c.SegmentBytes {
		errs = append(errs, fmt.Errorf("max_bytes: must be at least 2 segments (2 × segment_bytes = %s)", 2*c.SegmentBytes))
	}
	if c.MinFreeBytes < 0 {
		errs = append(errs, errors.New("min_free_bytes: must not be negative"))
	}
	switch c.Sync {
	case SyncAlways, SyncInterval, SyncNever:
	default:
		errs = append(errs, fmt.Errorf("sync: must be one of always, interval, never (got %q)", string(c.Sync)))
	}
	if c.SyncInterval <= 0 {
		errs = append(errs, errors.New("sync_interval: must be positive"))
	}
	return errors.Join(errs...)
}
