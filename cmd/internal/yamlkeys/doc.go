// Package yamlkeys finds the keys of a YAML document that the Go type it
// is decoded into has no field for, by walking the parsed yaml.Node tree
// beside the type (go.yaml.in/yaml/v3): every unknown key with its line,
// its key path ("devices.scanners[0].terminatr") and the keys that
// mapping allows. The register's config (cmd/loyaltyd/internal/config)
// and head office's (cmd/loyalty-hq/internal/hqserve) report unknown keys
// with it instead of parsing the decoder's error text.
package yamlkeys
