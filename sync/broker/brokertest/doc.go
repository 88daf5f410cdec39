// Package brokertest has fakes of sync/broker for logic tests: Conn, whose
// methods call its function fields (set only those a test expects to be
// called; an unexpected call panics on the nil field), Publisher in the
// same style, and Token, an operation the test completes when it chooses.
package brokertest
