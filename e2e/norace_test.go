//go:build !race && mosquitto

package e2e

const raceEnabled = false
