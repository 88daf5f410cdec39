// Package pgtest runs a real, throwaway PostgreSQL for tests: Debian's
// server binaries (found in /usr/lib/postgresql/<version>/bin, on $PG_BIN
// or on PATH), a new cluster made by initdb in a temporary folder, a free
// loopback port, the socket in that folder, and everything removed by
// Close. Tests run as root and PostgreSQL refuses root, so the cluster
// runs as an unprivileged system user (postgres, else nobody) that owns
// the folder.
//
// One cluster serves a whole test package: start it in TestMain and give
// each test its own schema (Server.Schema), which is much cheaper than a
// database or a cluster each. Restart stops and starts the server on the
// same port and data, for fault tests. Need ends a test that has no
// server: skipped, or failed naming PostgreSQL when CI is set
// (device/testkit.Missing).
package pgtest
