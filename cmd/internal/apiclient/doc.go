// Package apiclient is the client side of loyaltyd's local HTTP API
// (docs/api.md): requests over TCP or the daemon's unix socket, the bearer
// token, and error answers turned into *Error values. loyaltyctl and the
// end-to-end tests use it; it does not import the server.
package apiclient
