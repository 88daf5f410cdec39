// Package powerfs is a test filesystem for power cuts. Mount puts a FUSE
// filesystem over a temporary folder; its contents live in the memory of a
// server process (the test binary started again) and in a backing folder
// between mounts, the "card".
//
// What survives a power cut is only what was synced, as on a real disk:
//
//   - a write reaches the card when its file is synced (fsync or
//     fdatasync); until then reads see it but Cut drops it;
//   - a directory change (create, mkdir, rename, unlink, rmdir) reaches the
//     card when that directory is synced; a file whose data was synced but
//     whose directory entry was not is gone after a cut;
//   - Cut with Tear also lets a random 512-byte-aligned prefix of the last
//     unsynced write reach the card (a torn page);
//   - after a failed sync the unsynced data of that file is dropped while
//     reads still see it, as Linux does (PostgreSQL's "fsyncgate"): a
//     second sync then succeeds without making anything durable.
//
// Fail arms an injected error: the Nth write or sync from now returns the
// given errno (EIO, ENOSPC), once or from then on. Options.Latency delays
// every sync that has something to write (SDCard is a Raspberry Pi's card:
// a few milliseconds, with 35-76 ms spikes), one sync at a time as on a
// device queue. Stats counts bytes written, writes and syncs.
//
// After Cut every operation on the mount fails with EIO; Unmount, then
// Mount with the same Options.Backing opens the surviving image afresh. A
// clean Unmount without Cut keeps everything, as an orderly shutdown does.
//
// The server is a separate process because a process must not page-fault
// on a FUSE file it serves itself (bbolt reads its file through mmap): a
// goroutine stuck in such a fault holds up the garbage collector, which
// holds up the server. A test binary that imports this package doubles as
// the server (see the init function); nothing else is needed. When FUSE is
// unavailable Mount skips the test, or fails it when env CI is set, naming
// FUSE and fusermount3 (Debian package fuse3).
package powerfs
