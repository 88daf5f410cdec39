// Package mosquittotest starts a real mosquitto broker for tests: on a free
// loopback port, with a generated config, optional persistence, password
// and ACL files and a TLS listener. The broker can be killed (SIGKILL) and
// restarted on the same port, which is what the sync fault tests need.
//
// Tests that call Start are skipped when no mosquitto binary is found
// ($MOSQUITTO, then $PATH), so `go test ./...` still runs on a machine
// without it; when the CI environment variable is set they fail instead,
// naming mosquitto (testkit.Missing). CI installs it (make testdeps).
package mosquittotest
