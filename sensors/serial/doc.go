// Package serial opens a UART for kitd's serial sensors (MH-Z19, PMS5003,
// SDS011): raw mode, 8N1, no flow control, at the sensor's baud rate,
// with every read and write bounded by a context.
//
// # More details
//
// It is built on golang.org/x/sys/unix termios rather than a serial
// library: the sensors need one fixed setting (9600 8N1, raw), which is a
// dozen lines of termios, and x/sys is already a dependency. The port is
// opened non-blocking and handed to Go's runtime poller (os.NewFile), so a
// read waits in epoll, not in a blocked thread, and ends at the context's
// deadline or cancellation through the file's read deadline: no polling
// loop, and an abandoned read does not hold an OS thread.
//
// Raw mode matters for binary frames: the default line discipline would
// turn 0x0D into 0x0A, eat 0x03 (VINTR) and 0x11/0x13 (XON/XOFF), and
// echo what it receives back to the sensor.
//
// ReadFull reports a frame cut short as a TruncatedError with the number
// of bytes that did arrive, so "no answer" (wiring, power, TX/RX swapped)
// and "half an answer" (noise, baud rate) read differently.
//
// # References
//
// termios(3), https://man7.org/linux/man-pages/man3/termios.3.html
// Linux serial devices: /dev/ttyS* (8250 UARTs, BeagleBone's /dev/ttyS1..5
// with their overlays), /dev/ttyAMA* (PL011, the Pi's full UART),
// /dev/serial0 and /dev/serial1 (the Pi's symlinks to the GPIO UART and
// the Bluetooth one), /dev/ttyUSB* (USB serial adapters such as the
// SDS011's CH340), /dev/ttyACM* (USB CDC devices).
package serial
