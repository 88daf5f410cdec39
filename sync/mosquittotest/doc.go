// Package mosquittotest starts a real mosquitto broker for tests: on a free
// loopback port, with a generated config, optional persistence, password
// and ACL files and a TLS listener. The broker can be killed (SIGKILL) and
// restarted on the same port, which is what the sync fault tests need.
//
// Tests that call Start are skipped (not failed) when no mosquitto binary is
// found, so `go test ./...` still runs on a machine without it; CI installs
// it (make testdeps).
package mosquittotest
