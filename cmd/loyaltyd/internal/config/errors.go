package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid reports a configuration that cannot be used. Parse and Load
// return it wrapped in an Errors value listing every problem.
var ErrInvalid = errors.New("config: invalid")

// Error is one problem in a config file.
type Error struct {
	File string // the name given to Parse, or the path given to Load
	Line int    // 1-based; 0 when the problem has no place in the file
	Path string // key path, e.g. "devices.scanners[0].baud"; empty for syntax errors
	Msg  string // what is wrong and what is allowed
}

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a config file, ordered by line. It wraps
// ErrInvalid.
type Errors []Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (es Errors) Unwrap() error { return ErrInvalid }
