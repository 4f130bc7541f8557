//go:build !race

package jobse2e_test

const raceEnabled = false
