package sensors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Result is one sensor's answer to ReadOnce.
type Result struct {
	Name, Driver string
	// Values are calibrated; nil when Err is set.
	Values Values
	// Took is the time to open the driver and read it.
	Took time.Duration
	Err  error
}

// ReadOnce opens, reads once and closes every enabled sensor in cfgs
// (disabled ones are left alone and not listed), all at once, and returns
// the results in config order. Each call has the sensor's deadline, as in
// the scheduler; a hung call is abandoned and its driver closed whenever it
// returns. Calibration is applied, the deadband is not. cfgs should have
// passed ValidateConfigs; a sensor whose options do not prepare reports
// that as its Err.
func ReadOnce(ctx context.Context, reg *Registry, cfgs []Config) []Result {
	var out []Result
	var wg sync.WaitGroup
	for _, c := range cfgs {
		if c.IsEnabled() {
			out = append(out, Result{Name: c.Name, Driver: c.Driver})
		}
	}
	i := 0
	for _, c := range cfgs {
		if !c.IsEnabled() {
			continue
		}
		r := &out[i]
		i++
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Values, r.Took, r.Err = readOnce(ctx, reg, c)
		}()
	}
	wg.Wait()
	return out
}

func readOnce(ctx context.Context, reg *Registry, c Config) (Values, time.Duration, error) {
	if reg == nil {
		return nil, 0, errors.New("no driver registry")
	}
	kind, ok := reg.Lookup(c.Driver)
	if !ok {
		return nil, 0, fmt.Errorf("unknown driver %q", c.Driver)
	}
	open, err := kind.Prepare(c.Name, NewOptions(c.Options))
	if err != nil {
		return nil, 0, fmt.Errorf("options: %w", err)
	}
	dev := device{open: open, timeout: timeoutFor(c, kind)}
	start := time.Now()
	if err := dev.Open(ctx); err != nil {
		return nil, time.Since(start), fmt.Errorf("open: %w", err)
	}
	v, err := dev.Read(ctx)
	took := time.Since(start)
	if err == nil {
		v, err = calibrate(v, c.Calibrate)
	}
	// Close even after ctx is cancelled (Ctrl-C): it has its own deadline.
	cerr := dev.Close(context.WithoutCancel(ctx))
	switch {
	case err != nil:
		return nil, took, fmt.Errorf("read: %w", err)
	case cerr != nil:
		return v, took, fmt.Errorf("close: %w", cerr)
	}
	return v, took, nil
}

// WriteTable prints results as an aligned table with the columns NAME
// DRIVER VALUES TOOK ERROR; values are sorted by quantity, as in
// "humidity=40.2 temperature=21.5", and an empty cell is "-".
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDRIVER\tVALUES\tTOOK\tERROR")
	for _, r := range rs {
		errText := "-"
		if r.Err != nil {
			// errors.Join puts one error per line; a table row has one line.
			errText = strings.ReplaceAll(r.Err.Error(), "\n", "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Driver, formatValues(r.Values), formatTook(r.Took), errText)
	}
	return tw.Flush()
}

func formatValues(v Values) string {
	if len(v) == 0 {
		return "-"
	}
	qs := make([]string, 0, len(v))
	for q := range v {
		qs = append(qs, q)
	}
	sort.Strings(qs)
	var b strings.Builder
	for i, q := range qs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(q)
		b.WriteByte('=')
		b.WriteString(formatNumber(v[q]))
	}
	return b.String()
}

// formatNumber prints six significant digits without an exponent, so a
// calibrated 21.499999999 reads 21.5.
func formatNumber(x float64) string {
	r, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 6, 64), 64)
	if err != nil {
		r = x
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

func formatTook(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Microsecond).String()
}
