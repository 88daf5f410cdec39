// Package tlscheck checks the TLS files a register or head office is
// configured with before they are used, so `loyaltyd -check` and
// `loyalty-hq serve -check` name a certificate problem instead of a
// connection that later fails or times out: an unreadable or non-PEM file,
// a certificate that has expired or is not yet valid (CA or client), a
// private key that does not belong to the certificate, and a client
// certificate that the configured CA did not sign (or signed for another
// use than client authentication).
package tlscheck
