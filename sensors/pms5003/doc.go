// Package pms5003 reads Plantower's PMS5003 and PMS7003 particulate
// matter sensors over their UART (9600 8N1; 5 V supply for the fan, 3.3 V
// logic).
//
// # More details
//
// The sensor sends 32-byte frames (datasheet "Appendix I: transport
// protocol - active mode"):
//
//	42 4D  LL LL  D1 .. D13 (13 big-endian 16-bit words)  CC CC
//
// The length LLLL is 2*13+2 = 28, the bytes that follow it. The check
// word CCCC is the sum of every byte before it, start characters
// included. D1..D3 are PM1.0, PM2.5 and PM10 in µg/m³ under the factory's
// "CF=1" standard particle; D4..D6 the same under atmospheric
// environment, which is what this package reports (pm1, pm2_5, pm10);
// D7..D12 particle counts per 0.1 L above 0.3, 0.5, 1, 2.5, 5 and 10 µm;
// D13 is reserved (the PMS7003 puts its version and an error code there).
//
// Out of the box the sensor is in active mode and streams a frame every
// 200 ms to 2.3 s. Opening the sensor puts it in passive mode (datasheet
// "Appendix II", command 0xE1 with data 0) so that it answers only when
// asked, and each read asks (command 0xE2, "read in passive mode"):
//
//	passive mode:  42 4D E1 00 00 01 70
//	read:          42 4D E2 00 00 01 71
//
// The sensor answers the mode change with a short frame of its own
// (length 4; not in the datasheet but sent by every unit seen): any
// well-formed frame whose length is not 28 is passed over. Each read
// flushes what came before the request, so a frame sent in active mode
// before the switch, or a late answer, never answers it.
//
// Faults are errors, never readings: a check word that does not match
// (*ChecksumError), a frame cut short by the deadline
// (*serial.TruncatedError), no frame header among the bytes that came
// (*serial.GarbageError), and an all-zero frame, ErrNotReady: all twelve
// data words zero is what the sensor sends while its fan spins up after
// power-on or wake-up (no air holds no particle at all, and the
// datasheet asks for 30 s after wake-up before data is stable).
//
// # Datasheets
//
// PMS5003: https://www.aqmd.gov/docs/default-source/aq-spec/resources-page/plantower-pms5003-manual_v2-3.pdf
// PMS7003: "PMS7003 series data manual" V2.5, Plantower (same frames and commands)
package pms5003
