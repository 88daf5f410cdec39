// Package testkit holds the few helpers every test package shares, so that
// no test can pass by accident:
//
//   - Eventually waits for a condition with a deadline and fails the test
//     naming what it waited for (one copy instead of one per package).
//   - Missing reports a real part the test needs but cannot find
//     (mosquitto, Chromium, a tmpfs mount...). Without CI it skips the test
//     with a message naming the part and how to install it; when the CI
//     environment variable is set it FAILS the test instead, so a CI run
//     without mosquitto cannot come out green by skipping the sync suites.
//   - Seed gives a randomised test its seed: a new one each run, printed,
//     or the fixed one in TEST_SEED to replay a failure.
//   - FreeAddr, PortTaken, MoveAddr and PortTries start a child process
//     on a free loopback port and move it to another when a stranger took
//     the port first.
//
// It imports nothing from this module, so the tests of every layer
// (device, ledger, sync, cmd) may use it; like device/clock it is an
// allowed exception to "ledger imports nothing of device" in
// cmd/internal/e2e's TestLayering.
package testkit
