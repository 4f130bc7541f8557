package sensors

import "errors"

// Errors of the scheduler's control methods.
var (
	// ErrUnknownSensor is returned by SetInterval and SetEnabled when no
	// configured sensor has the name (a shadow delta for a sensor that was
	// removed from the config file).
	ErrUnknownSensor = errors.New("sensors: unknown sensor")
	// ErrRunTwice is returned when Run is called on a scheduler that has
	// already run: its drivers are closed and its goroutines gone.
	ErrRunTwice = errors.New("sensors: scheduler already ran")
)

// Errors of one sensor's attempts; they appear in Health.LastError and
// Result.Err, wrapped with the operation ("open: ", "read: ").
var (
	// ErrTimeout is returned when a driver call did not return by its
	// deadline. The call is abandoned: it keeps the device until it returns.
	ErrTimeout = errors.New("timeout")
	// ErrBusy is returned when an abandoned call still holds the device, so
	// nothing else may use it.
	ErrBusy = errors.New("device still held by an abandoned call")
	// ErrGarbage is returned when a driver reports no values, or a value
	// that is NaN or infinite: what a sensor sends on a loose wire.
	ErrGarbage = errors.New("sensor garbage")
)
