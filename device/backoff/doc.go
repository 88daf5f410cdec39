// Package backoff computes the wait before a retry: exponential growth
// from a minimum to a cap, optionally with full jitter so that a fleet of
// registers reconnecting after a broker outage does not come back in step.
//
// It is the one retry delay of the module: the serial reader's reopen
// (device/serialdev, deterministic) and the uplink's reconnect
// (sync/uplink, jittered) use it. It lives in device/, the layer that may
// import nothing above it, and imports nothing of this module, so every
// layer can use it (TestLayering).
package backoff
