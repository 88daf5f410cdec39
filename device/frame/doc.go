// Package frame turns the byte stream of a serial scanner or card reader
// into frames. It is pure: bytes and their arrival time go in, frames and
// typed rejects come out, so every framing case (split reads, back-to-back
// scans, noise, over-long garbage, idle-gap framing) is testable without a
// port.
package frame
