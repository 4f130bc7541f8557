package buffer

import (
	"sync"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/datasize"
)

// BenchmarkAppend appends 100-byte readings, one per call, from 1 and 8
// goroutines, under each sync policy, on the default segment size.
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		for _, writers := range []int{1, 8} {
			b.Run(string(policy)+"/writers="+string(rune('0'+writers)), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.Dir = b.TempDir()
				cfg.Sync = policy
				cfg.MinFreeBytes = 0
				buf := mustOpen(b, cfg)
				defer buf.Close()
				p := payload(0, 100)
				b.SetBytes(100)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				per := b.N / writers
				for w := 0; w < writers; w++ {
					n := per
					if w == 0 {
						n += b.N - per*writers
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < n; i++ {
							if _, err := buf.Append(p); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "readings/s")
			})
		}
	}
}

// BenchmarkRecover measures Open of a full 256MiB buffer (default config).
func BenchmarkRecover(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 256MiB buffer")
	}
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	cfg.Sync = SyncNever
	cfg.MinFreeBytes = 0
	buf := mustOpen(b, cfg)
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = payload(uint64(i), 100)
	}
	for buf.Stats().Bytes < int64(cfg.MaxBytes)-int64(cfg.SegmentBytes) {
		if _, err := buf.Append(batch...); err != nil {
			b.Fatal(err)
		}
	}
	st := buf.Stats()
	buf.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf := mustOpen(b, cfg)
		b.StopTimer()
		if got := buf.Stats(); got.Pending != st.Pending {
			b.Fatalf("pending %d after recovery, want %d", got.Pending, st.Pending)
		}
		buf.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(st.Bytes)/float64(datasize.MiB), "MiB")
	b.ReportMetric(float64(st.Pending), "records")
}

// BenchmarkDiskBytesPerReading counts the bytes the buffer writes to files
// (segments, cursor saves, seq reservations) per 100-byte reading at the
// default policy, with every reading acked in batches of 10 as a publisher
// would.
func BenchmarkDiskBytesPerReading(b *testing.B) {
	fsys := newFaultFS()
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	cfg.MinFreeBytes = 0
	cfg.SyncInterval = 10 * time.Millisecond // many cursor saves within the run
	buf := mustOpen(b, cfg, Deps{FS: fsys})
	p := payload(0, 100)
	base := fsys.written.Load()
	b.ResetTimer()
	acks := make([]uint64, 0, 10)
	for i := 0; i < b.N; i++ {
		s, err := buf.Append(p)
		if err != nil {
			b.Fatal(err)
		}
		if acks = append(acks, s); len(acks) == 10 {
			buf.Ack(acks...)
			acks = acks[:0]
		}
	}
	buf.Close()
	b.StopTimer()
	b.ReportMetric(float64(fsys.written.Load()-base)/float64(b.N), "disk-B/reading")
}
