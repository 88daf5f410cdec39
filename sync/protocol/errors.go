package protocol

import "errors"

// Sentinel errors. Every decode error wraps exactly one of these, so a
// receiver can count and report rejects by kind with errors.Is.
var (
	// ErrTooLarge: the payload exceeds the size limit for its message kind.
	ErrTooLarge = errors.New("protocol: message too large")
	// ErrMalformed: the payload is not valid JSON for its message kind, has
	// unknown fields, trailing data or a missing required field.
	ErrMalformed = errors.New("protocol: malformed message")
	// ErrVersion: the message names a protocol or CloudEvents version this
	// program does not speak.
	ErrVersion = errors.New("protocol: unsupported version")
	// ErrMismatch: the message contradicts its topic (another store or
	// register, an id that does not match its sequence number).
	ErrMismatch = errors.New("protocol: message does not match its topic")
	// ErrOrder: sequence numbers inside a batch are not strictly consecutive.
	ErrOrder = errors.New("protocol: events out of order")
	// ErrTopic: the topic is not one of the protocol's topics.
	ErrTopic = errors.New("protocol: unknown topic")
	// ErrInvalidID: a store or register id is empty, too long or contains
	// characters that are not allowed in a topic level.
	ErrInvalidID = errors.New("protocol: invalid store or register id")
)
