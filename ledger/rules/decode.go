package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxDocument is the largest rule document Decode accepts, in bytes.
const MaxDocument = 1 << 20

// Decode reads a rule set from a JSON document, as head office sends it, and
// validates it. Unknown fields, trailing data, documents over MaxDocument
// bytes and invalid rules are errors wrapping ErrInvalid; the caller keeps
// its previous rule set.
func Decode(data []byte) (*RuleSet, error) {
	if len(data) > MaxDocument {
		return nil, fmt.Errorf("%w: document is %d bytes, more than %d", ErrInvalid, len(data), MaxDocument)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var rs RuleSet
	if err := dec.Decode(&rs); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: decode: data after the document", ErrInvalid)
	}
	if err := rs.Validate(); err != nil {
		return nil, err
	}
	return &rs, nil
}
