package yamlkeys

import (
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Unknown is a mapping key the target type has no field for.
type Unknown struct {
	Line, Column int
	Path         string   // key path: "ledger.lock_timout", "devices.scanners[0].aim2"
	Key          string   // the key itself
	Allowed      []string // the keys that mapping accepts, in field order
}

var (
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
)

// Find walks n (a document or any node) beside t, the type it decodes
// into, and returns every key of a mapping decoded into a struct that the
// struct has no field for, in document order. It follows the decoder:
// fields by their yaml tag (or lower-cased name), inline structs and maps,
// merge keys (<<, the last one, keys set directly win) and aliases; it
// does not look inside values the type decodes itself (yaml.Unmarshaler,
// yaml.Node, interfaces), nor inside a node of the wrong kind for its type
// or a mapping with a repeated key, which the decoder reports otherwise.
// TestFindAgreesWithTheDecoder and its fuzz test hold it to the decoder's
// KnownFields.
func Find(n *yaml.Node, t reflect.Type) []Unknown {
	w := walker{seen: map[walked]bool{}}
	w.walk(n, t, "")
	return w.found
}

type walked struct {
	n *yaml.Node
	t reflect.Type
}

type walker struct {
	found []Unknown
	seen  map[walked]bool // anchored nodes already walked for a type
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n == nil || t == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if decodesItself(t) {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			w.walk(c, t, path)
		}
		return
	case yaml.AliasNode:
		// An alias decodes as its anchor.
		w.walk(n.Alias, t, path)
		return
	}
	if n.Anchor != "" {
		// An anchored node is walked once per type however often it is
		// aliased: its unknown keys are reported once, at the path of
		// its first use, and nested aliases cannot multiply the work.
		k := walked{n, t}
		if w.seen[k] {
			return
		}
		w.seen[k] = true
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind == yaml.MappingNode {
			w.mapping(n, t, path, nil)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode || hasDuplicateKeys(n) {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if !isMerge(k) {
				w.walk(v, t.Elem(), join(path, k.Value))
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, v := range n.Content {
			w.walk(v, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	}
}

// mapping checks the keys of a mapping decoded into struct t. merged is
// non-nil while walking the value of a merge key: the keys the mapping
// that merges already set (which the merge does not override) plus those
// earlier merges set.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string, merged map[string]bool) {
	if hasDuplicateKeys(n) {
		return // the decoder refuses the whole mapping
	}
	fields := fieldsOf(t)
	var mergeNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			mergeNode = v // as the decoder: the last merge key counts
			continue
		}
		name, ok := keyName(k)
		if !ok {
			continue // no string key: the decoder skips or reports it
		}
		if merged != nil {
			if merged[name] {
				continue
			}
			merged[name] = true
		}
		ft, ok := fields.types[name]
		if !ok && fields.rest != nil {
			ft, ok = fields.rest, true
		}
		if !ok {
			w.found = append(w.found, Unknown{Line: k.Line, Column: k.Column, Path: join(path, name), Key: name, Allowed: fields.names})
			continue
		}
		w.walk(v, ft, join(path, name))
	}
	if mergeNode == nil {
		return
	}
	if merged == nil {
		merged = map[string]bool{}
		for i := 0; i < len(n.Content); i += 2 {
			if name, ok := keyName(n.Content[i]); ok {
				merged[name] = true
			}
		}
	}
	// A merge brings in a mapping, an alias of one, or a list of them;
	// their keys belong to this struct.
	items := []*yaml.Node{mergeNode}
	if mergeNode.Kind == yaml.SequenceNode {
		items = mergeNode.Content
	}
	for _, m := range items {
		for m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		if m.Kind == yaml.MappingNode {
			w.mapping(m, t, path, merged)
		}
	}
}

// keyName decodes a mapping key as the decoder does for a struct: into a
// string, which a null key is not.
func keyName(k *yaml.Node) (string, bool) {
	if k.ShortTag() == "!!null" {
		return "", false
	}
	var name string
	if k.Decode(&name) != nil {
		return "", false
	}
	return name, true
}

// hasDuplicateKeys reports whether two keys of mapping n are equal, which
// the decoder refuses.
func hasDuplicateKeys(n *yaml.Node) bool {
	for i := 0; i < len(n.Content); i += 2 {
		for j := i + 2; j < len(n.Content); j += 2 {
			if n.Content[i].Kind == n.Content[j].Kind && n.Content[i].Value == n.Content[j].Value {
				return true
			}
		}
	}
	return false
}

type fieldSet struct {
	names []string // in field order
	types map[string]reflect.Type
	rest  reflect.Type // element type of an inline map, which takes the other keys
}

// fieldsOf lists the YAML keys of struct t as the decoder sees them.
func fieldsOf(t reflect.Type) fieldSet {
	fs := fieldSet{types: map[string]reflect.Type{}}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous { // as the decoder: embedded structs count
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if hasOpt(opts, "inline") {
				switch ft := f.Type; ft.Kind() {
				case reflect.Struct:
					add(ft)
				case reflect.Map:
					// An inline map takes every key the struct does not
					// name: nothing is unknown at this level.
					fs.rest = ft.Elem()
				}
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if _, dup := fs.types[name]; !dup {
				fs.names = append(fs.names, name)
			}
			fs.types[name] = f.Type
		}
	}
	add(t)
	return fs
}

// Keys returns the YAML keys of struct type t (through pointers, slices
// and maps to their element), in field order, for messages that say what
// a mapping allows; nil if t is not a struct.
func Keys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return fieldsOf(t).names
}

// obsoleteUnmarshaler is yaml.v2's hook, which v3 still calls.
type obsoleteUnmarshaler interface {
	UnmarshalYAML(unmarshal func(any) error) error
}

var obsolete = reflect.TypeFor[obsoleteUnmarshaler]()

// decodesItself reports whether the decoder hands a node to t itself
// rather than matching keys to fields.
func decodesItself(t reflect.Type) bool {
	switch {
	case t == nodeType, t.Kind() == reflect.Interface:
		return true
	case reflect.PointerTo(t).Implements(yamlUnmarshaler), reflect.PointerTo(t).Implements(obsolete):
		return true
	}
	return false
}

// isMerge reports whether k is the merge key "<<", as the decoder decides.
func isMerge(k *yaml.Node) bool {
	if k.Kind != yaml.ScalarNode || k.Value != "<<" {
		return false
	}
	switch k.Tag {
	case "", "!", "!!merge", "tag:yaml.org,2002:merge":
		return true
	}
	return false
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
