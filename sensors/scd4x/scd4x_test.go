package scd4x

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
)

func TestNewI2CRejectsAddress(t *testing.T) {
	if _, err := NewI2C(context.Background(), chipmodel.NewBus("b"), 0x61, nil); err == nil || !strings.Contains(err.Error(), "0x61") {
		t.Fatalf("err = %v", err)
	}
}

// A sensor that is not measuring never reports data ready: Sense gives up
// after MaxWait of polling with a NotReadyError.
func TestSenseNotReady(t *testing.T) {
	clock := &chipmodel.Clock{}
	bus := chipmodel.NewBus("b")
	bus.Clock = clock
	m := chipmodel.NewSCD4x(clock)
	bus.Add(0x62, m)
	ctx := context.Background()
	d, err := NewI2C(ctx, bus, 0x62, &Opts{Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.Sense(ctx); err != nil || got.CO2 != 500 {
		t.Fatalf("first measurement: %+v, %v", got, err)
	}
	m.Reset()
	_, err = d.Sense(ctx)
	var nr *NotReadyError
	if !errors.As(err, &nr) || nr.Waited < DefaultOpts.MaxWait {
		t.Fatalf("err = %v", err)
	}
}
