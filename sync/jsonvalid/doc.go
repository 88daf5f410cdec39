// Package jsonvalid checks JSON the way encoding/json's Valid does, in
// one pass and a few times faster, and finds where a value inside a
// larger document ends (Scan). The decoders of the events stream (the
// fast path of sync/protocol, head office's point events in
// sync/hq/hqstore) check every event's data with it: json.Valid's state
// machine, a function call per byte, was the largest part of decoding an
// events message. It accepts exactly what json.Valid accepts
// (FuzzValidMatchesJSON), json.Valid's leniencies included: bytes that
// are not UTF-8 inside strings pass, as they do there.
package jsonvalid
