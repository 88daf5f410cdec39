// Package benchcmp runs a hand-written path and the library call it
// replaces as sibling benchmarks on the same work, and prints the
// "RATIO name value" line `make bench` collects. The ledger's and head
// office's benchmarks use it (the group committer against bbolt's
// DB.Batch, the event codecs against encoding/json); it imports nothing
// of this module, so the ledger's own tests can import it.
//
// The machine the benchmarks run on is shared and noisy, so each side is
// timed in CPU time of the process (getrusage) as well as wall time, and
// the ratio is taken from the medians of the -count runs. Each timed
// sample runs the op often enough to last Options.MinSample (50ms), so
// `-benchtime 1x` still gives the CPU clock something to see. A hand-written
// path is kept only where its benchmark shows it wins.
package benchcmp
