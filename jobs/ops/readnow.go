package ops

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/kitd-dev/kitd/jobs"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/telemetry"
)

// Reader is the running sensor scheduler.
type Reader interface {
	ReadNow(ctx context.Context, names []string) ([]sensors.NowResult, error)
}

// ReadNow is kitd.read-now: read every enabled sensor, or the ones named
// in "sensors", at once, and append each reading to the buffer like any
// other, so it is delivered, and explained if lost, as any reading is.
// SUCCEEDED with "seqs" ("air:1201 soil-1:1202"); when any sensor failed
// to read, FAILED with the seqs of those that did and the errors in
// "failed". An unknown sensor name is REJECTED and nothing is read.
type ReadNow struct {
	// Sensors returns the scheduler running now (a reload may replace it).
	Sensors func() Reader
	// Append stores a reading and returns its seq.
	Append func(telemetry.Reading) (uint64, error)
}

type readNowParams struct {
	Sensors []string `json:"sensors"`
}

// Run implements jobs.Operation.
func (op ReadNow) Run(ctx context.Context, e *jobs.Execution) jobs.Result {
	var p readNowParams
	if err := jobs.DecodeParams(e.Document, &p); err != nil {
		return reject(err.Error())
	}
	res, err := op.Sensors().ReadNow(ctx, p.Sensors)
	if err != nil {
		return reject(fmt.Sprintf("sensors: %v", err))
	}
	if len(res) == 0 {
		return fail("no sensor is enabled")
	}
	var seqs, failed []string
	for _, r := range res {
		if r.Err != nil {
			failed = append(failed, r.Name+": "+r.Err.Error())
			continue
		}
		seq, err := op.Append(r.Reading)
		if err != nil {
			failed = append(failed, r.Name+": not stored: "+err.Error())
			continue
		}
		seqs = append(seqs, r.Name+":"+strconv.FormatUint(seq, 10))
	}
	d := map[string]string{"read": strconv.Itoa(len(seqs))}
	if len(seqs) > 0 {
		d["seqs"] = strings.Join(seqs, " ")
	}
	if len(failed) > 0 {
		d["failed"] = strings.Join(failed, "; ")
		d["reason"] = fmt.Sprintf("%d of %d sensors did not read", len(failed), len(res))
		return jobs.Result{Status: jobs.Failed, Details: d}
	}
	return jobs.Result{Status: jobs.Succeeded, Details: d}
}

func reject(reason string) jobs.Result {
	return jobs.Result{Status: jobs.Rejected, Details: map[string]string{"reason": reason}}
}

func fail(reason string) jobs.Result {
	return jobs.Result{Status: jobs.Failed, Details: map[string]string{"reason": reason}}
}
