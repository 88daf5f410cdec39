// Package benchcmp runs a hand-written path and the library call it
// replaces as sibling benchmarks on the same work, and prints the
// "RATIO name value" line `make bench` collects.
//
// The machine the benchmarks run on is shared and noisy, so each side is
// timed in CPU time of the process (getrusage) as well as wall time, and
// the ratio is taken from the medians of the -count runs. A hand-written
// path is kept only where its benchmark shows it wins.
package benchcmp
