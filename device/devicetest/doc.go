// Package devicetest has fakes of the device layer's interfaces for the
// tests of packages that use them (the daemon): a recording Display and a
// settable Clock. Each is checked against its interface at compile time.
package devicetest
