package yamlkeys_test

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/loyalty-terminal/loyalty/cmd/internal/yamlkeys"
)

type serial struct {
	Path string `yaml:"path"`
	Baud int    `yaml:"baud"`
}

type scanner struct {
	Name   string `yaml:"name"`
	serial `yaml:",inline"`
	AIM    bool `yaml:"aim"`
}

type selfDecoding struct{ v string }

func (s *selfDecoding) UnmarshalYAML(n *yaml.Node) error { s.v = n.Value; return nil }

type doc struct {
	Store    string             `yaml:"store"`
	Scanners []scanner          `yaml:"scanners"`
	Codes    map[string]string  `yaml:"codes"`
	Named    map[string]serial  `yaml:"named"`
	Ptr      *serial            `yaml:"ptr"`
	Self     selfDecoding       `yaml:"self"`
	Raw      yaml.Node          `yaml:"raw"`
	Any      any                `yaml:"any"`
	When     time.Time          `yaml:"when"`
	Every    time.Duration      `yaml:"every"`
	Skipped  string             `yaml:"-"`
	Untagged int                // key "untagged"
	Extra    map[string]any     `yaml:",inline"`
	_        struct{ X string } // unexported: not a key
}

type strict struct {
	Store    string            `yaml:"store"`
	Scanners []scanner         `yaml:"scanners"`
	Named    map[string]serial `yaml:"named"`
	Ptr      *serial           `yaml:"ptr"`
	Self     selfDecoding      `yaml:"self"`
	When     time.Time         `yaml:"when"`
}

func find(t *testing.T, src string, typ reflect.Type) []yamlkeys.Unknown {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	return yamlkeys.Find(&n, typ)
}

func TestFind(t *testing.T) {
	scannerKeys := []string{"name", "path", "baud", "aim"}
	strictKeys := []string{"store", "scanners", "named", "ptr", "self", "when"}
	for _, tc := range []struct {
		name string
		src  string
		want []yamlkeys.Unknown
	}{
		{"all known", "store: s1\nscanners:\n  - {name: a, path: /dev/x, baud: 9600, aim: true}\nptr: {path: p}\nwhen: 2026-01-01T00:00:00Z\n", nil},
		{"top level", "store: s1\ncolour: red\n", []yamlkeys.Unknown{{Line: 2, Column: 1, Path: "colour", Key: "colour", Allowed: strictKeys}}},
		{"inside a list item, inline fields allowed", "scanners:\n  - name: a\n    path: /dev/x\n    terminatr: cr\n",
			[]yamlkeys.Unknown{{Line: 4, Column: 5, Path: "scanners[0].terminatr", Key: "terminatr", Allowed: scannerKeys}}},
		{"flow style, second item", "scanners: [{name: a}, {name: b, bod: 1}]\n",
			[]yamlkeys.Unknown{{Line: 1, Column: 33, Path: "scanners[1].bod", Key: "bod", Allowed: scannerKeys}}},
		{"map values are structs", "named:\n  front:\n    path: x\n    speed: 1\n",
			[]yamlkeys.Unknown{{Line: 4, Column: 5, Path: "named.front.speed", Key: "speed", Allowed: []string{"path", "baud"}}}},
		{"through a pointer", "ptr:\n  pth: x\n", []yamlkeys.Unknown{{Line: 2, Column: 3, Path: "ptr.pth", Key: "pth", Allowed: []string{"path", "baud"}}}},
		{"a type that decodes itself is not looked into", "self: {anything: 1}\n", nil},
		{"wrong kind is the decoder's type error", "ptr: [1, 2]\nscanners: {a: 1}\n", nil},
		{"merge key brings known keys", "base: &b {path: x, baud: 1}\nptr:\n  <<: *b\n  baud: 2\n",
			[]yamlkeys.Unknown{{Line: 1, Column: 1, Path: "base", Key: "base", Allowed: strictKeys}}},
		{"merged unknown key", "ptr:\n  <<: {path: x, parity: odd}\n", []yamlkeys.Unknown{{Line: 2, Column: 17, Path: "ptr.parity", Key: "parity", Allowed: []string{"path", "baud"}}}},
		{"alias walked once per type", "scanners:\n  - &s {name: a, x: 1}\n  - *s\n",
			[]yamlkeys.Unknown{{Line: 2, Column: 18, Path: "scanners[0].x", Key: "x", Allowed: scannerKeys}}},
		{"several, in document order", "a: 1\nstore: s\nb: 2\n", []yamlkeys.Unknown{
			{Line: 1, Column: 1, Path: "a", Key: "a", Allowed: strictKeys}, {Line: 3, Column: 1, Path: "b", Key: "b", Allowed: strictKeys}}},
		{"empty document", "", nil},
		{"not a mapping", "- 1\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := find(t, tc.src, reflect.TypeFor[strict]())
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Find = %+v\nwant   %+v", got, tc.want)
			}
		})
	}
}

func TestFindSkipsWhatTheDecoderTakes(t *testing.T) {
	src := "store: s\nuntagged: 1\nraw: {a: 1}\nany: {b: 2}\nwhen: 2026-01-01T00:00:00Z\nevery: 1s\ncodes: {x: y}\nself: {c: 3}\nnot_a_field: 1\n"
	if got := find(t, src, reflect.TypeFor[doc]()); got != nil {
		t.Fatalf("an inline map takes every other key, got %+v", got)
	}
	if got, want := yamlkeys.Keys(reflect.TypeFor[[]*doc]()), []string{"store", "scanners", "codes", "named", "ptr", "self", "raw", "any", "when", "every", "untagged"}; !slices.Equal(got, want) {
		t.Fatalf("Keys = %v, want %v", got, want)
	}
	if got := yamlkeys.Keys(reflect.TypeFor[string]()); got != nil {
		t.Fatalf("Keys(string) = %v", got)
	}
}

// decoderUnknown is the reference: the (line, key) pairs yaml's own
// KnownFields decoder reports.
var notFound = regexp.MustCompile(`line (\d+): field (.*) not found in type`)

func decoderUnknown(src string) ([]string, error) {
	var v strict
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&v)
	var te *yaml.TypeError
	if err != nil && !errors.As(err, &te) {
		return nil, err
	}
	var out []string
	if te != nil {
		for _, m := range te.Errors {
			if s := notFound.FindStringSubmatch(m); s != nil {
				out = append(out, s[1]+":"+s[2])
			}
		}
	}
	return out, nil
}

func sameAsDecoder(t *testing.T, src string) {
	t.Helper()
	want, err := decoderUnknown(src)
	if err != nil {
		return // not a document the decoder reads
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		return
	}
	var got []string
	for _, u := range yamlkeys.Find(&n, reflect.TypeFor[strict]()) {
		got = append(got, fmt.Sprintf("%d:%s", u.Line, u.Key))
	}
	slices.Sort(got)
	got = slices.Compact(got)
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%q: walker found %v, the decoder %v", src, got, want)
	}
}

var seeds = []string{
	"store: s1\ncolour: red\n",
	"scanners:\n  - name: a\n    terminatr: cr\n  - {name: b, bod: 1}\n",
	"named:\n  front: {path: x, speed: 1}\n",
	"ptr:\n  <<: {path: x, parity: odd}\n",
	"base: &b {path: x, nope: 1}\nptr: *b\nnamed: {a: *b}\n",
	"self: {x: 1}\nwhen: 2026-01-01T00:00:00Z\n",
	"ptr: [1]\nscanners: {a: 1}\nstore: [x]\n",
}

// TestFindAgreesWithTheDecoder: on every seed the walker finds the same
// unknown keys on the same lines as yaml's KnownFields decoder.
func TestFindAgreesWithTheDecoder(t *testing.T) {
	for _, s := range seeds {
		sameAsDecoder(t, s)
	}
}

func FuzzFindAgreesWithTheDecoder(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 {
			return
		}
		sameAsDecoder(t, src)
	})
}
