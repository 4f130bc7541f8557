//go:build race

package jobse2e_test

// raceEnabled builds the kitd under test with -race when the tests run with it.
const raceEnabled = true
