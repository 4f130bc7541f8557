package hw

import "errors"

// Errors of opening a bus; the messages say what to do.
var (
	// ErrNoBus is returned when /dev/i2c-N does not exist.
	ErrNoBus = errors.New("no such I2C bus: enable I2C (Raspberry Pi: dtparam=i2c_arm=on in /boot/firmware/config.txt, then reboot; BeagleBone Black: /dev/i2c-2 is the P9 header); kitd sensors scan lists the buses present")
	// ErrBusPermission is returned when the agent may not open the bus.
	ErrBusPermission = errors.New("permission denied: add the service user to group i2c (sudo usermod -aG i2c kitd) and restart the service")
	// ErrHostInit is returned when periph's host drivers fail to start.
	ErrHostInit = errors.New("periph host init failed")
)

// ErrClosed is returned when a sensor is opened on a closed Host.
var ErrClosed = errors.New("hw: host closed")
