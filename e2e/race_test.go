//go:build race && mosquitto

package e2e

// raceEnabled builds the kitd under test with -race when the tests run with it.
const raceEnabled = true
