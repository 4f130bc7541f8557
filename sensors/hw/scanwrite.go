package hw

import (
	"bufio"
	"fmt"
	"io"
)

// Hints for an empty board, printed by WriteScan.
const (
	noBusesHint = "no I2C buses found (on a Pi: dtparam=i2c_arm=on in /boot/firmware/config.txt, then reboot; on a BeagleBone Black, /dev/i2c-2 is the P9 header)"
	noW1Hint    = "no 1-Wire devices (on a Pi: dtoverlay=w1-gpio in /boot/firmware/config.txt, data on GPIO4 with a 4.7 kΩ pull-up to 3.3 V, then reboot)"
)

// WriteScan prints a scan for a person. An empty board is a normal
// result, worded as advice, not as an error.
func WriteScan(w io.Writer, r ScanResult) error {
	bw := bufio.NewWriter(w)
	if len(r.Buses) == 0 {
		fmt.Fprintf(bw, "I2C: %s\n", noBusesHint)
	}
	for _, b := range r.Buses {
		switch {
		case b.Err != nil:
			fmt.Fprintf(bw, "I2C %s: cannot open: %v\n", b.Name, b.Err)
			continue
		case len(b.Devices) == 0:
			fmt.Fprintf(bw, "I2C %s: no device answers (check wiring and power: SDA, SCL, 3.3 V, GND)\n", b.Name)
			continue
		}
		fmt.Fprintf(bw, "I2C %s: %d %s\n", b.Name, len(b.Devices), plural(len(b.Devices), "device", "devices"))
		for _, d := range b.Devices {
			switch {
			case d.Chip == "":
				fmt.Fprintf(bw, "  0x%02x  unknown\n", d.Addr)
			case d.Guess:
				fmt.Fprintf(bw, "  0x%02x  %s?  (%s)\n", d.Addr, d.Chip, d.How)
			default:
				fmt.Fprintf(bw, "  0x%02x  %s  (%s)\n", d.Addr, d.Chip, d.How)
			}
		}
	}
	switch {
	case r.W1Err != nil:
		fmt.Fprintf(bw, "1-Wire %s: cannot list: %v\n", r.W1Dir, r.W1Err)
	case len(r.W1) == 0:
		fmt.Fprintf(bw, "1-Wire %s: %s\n", r.W1Dir, noW1Hint)
	default:
		fmt.Fprintf(bw, "1-Wire %s: %d %s\n", r.W1Dir, len(r.W1), plural(len(r.W1), "device", "devices"))
		for _, d := range r.W1 {
			chip := d.Chip
			if chip == "" {
				chip = "not a thermometer kitd reads"
			}
			fmt.Fprintf(bw, "  %s  %s\n", d.ID, chip)
		}
	}
	return bw.Flush()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
