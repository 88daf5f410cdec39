package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/loyalty-terminal/loyalty/cmd/internal/yamlkeys"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// MaxSize is the largest config file Parse accepts, in bytes.
const MaxSize = 32 << 20

// Load reads and parses the config file at path; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a config file's contents, applies the defaults and validates
// it. name is used in error messages (normally the file's path). On any
// problem it returns nil and an Errors value (wrapping ErrInvalid) listing
// every problem with its line and key path.
func Parse(name string, data []byte) (*Config, error) {
	p := &parser{file: name, lines: map[int][]string{}, keys: map[string]int{}, vals: map[string]string{}}
	if len(data) > MaxSize {
		p.add(0, "", "file is %d bytes; the limit is %d", len(data), MaxSize)
		return nil, p.errs
	}
	if rest, fc, ok := fastItems(data); ok {
		data, p.fast = rest, &fc // the item lines are blanked; see fastitems.go
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		p.syntax(err)
		return nil, p.errs
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.add(extra.Line, "", "a second YAML document (---) is not allowed; keep one document per file")
		return nil, p.errs
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != 0 && doc.Kind != yaml.MappingNode {
		p.add(doc.Line, "", "the file must be a mapping of sections (register:, ledger:, ...)")
		return nil, p.errs
	}
	if doc.Kind == yaml.MappingNode {
		p.walk(doc, "")
		p.unknownKeys(doc)
	}

	cfg := &Config{}
	if doc.Kind == yaml.MappingNode {
		dec = yaml.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(cfg); err != nil {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				p.syntax(err)
				return nil, p.errs
			}
			for _, msg := range te.Errors {
				p.typeError(msg)
			}
		}
	}
	if p.fast != nil {
		cfg.Catalogue.Items = p.fast.items
	}
	typeErrs := len(p.errs)
	p.defaults(cfg)
	v := &validator{p: p, cfg: cfg}
	v.validate()
	if len(p.errs) > 0 {
		p.errs = dedupe(p.errs, typeErrs)
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	return cfg, nil
}

// parser collects errors and knows where every key is.
type parser struct {
	file  string
	errs  Errors
	lines map[int][]string  // line -> key paths starting on it, outermost first
	vals  map[string]string // key path -> scalar value
	keys  map[string]int    // key path -> line
	// fast holds catalogue.items when fastItems read them (their keys are
	// not in lines/vals/keys; lineOf finds an item's line here).
	fast *fastCatalogue
}

func (p *parser) add(line int, path, format string, args ...any) {
	p.errs = append(p.errs, Error{File: p.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// addAt reports a problem at a key path, placed on the line of the key or,
// when the key is absent, of its nearest present parent.
func (p *parser) addAt(path, format string, args ...any) {
	p.add(p.lineOf(path), path, format, args...)
}

func (p *parser) lineOf(path string) int {
	if p.fast != nil {
		if rest, ok := strings.CutPrefix(path, "catalogue.items["); ok {
			if i, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, ']'), 0)]); err == nil && i >= 0 && i < len(p.fast.lines) {
				return p.fast.lines[i]
			}
		}
	}
	for q := path; q != ""; q = parent(q) {
		if l, ok := p.keys[q]; ok {
			return l
		}
	}
	return 0
}

// has reports whether the key path is present in the file.
func (p *parser) has(path string) bool { _, ok := p.keys[path]; return ok }

func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func (p *parser) record(line int, path string) {
	if _, ok := p.keys[path]; !ok {
		p.keys[path] = line
	}
	p.lines[line] = append(p.lines[line], path)
}

func (p *parser) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		p.vals[path] = n.Value
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kp := k.Value
			if path != "" {
				kp = path + "." + k.Value
			}
			p.record(k.Line, kp)
			p.walk(v, kp)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			p.record(v.Line, ip)
			p.walk(v, ip)
		}
	case yaml.AliasNode:
		// Anchors and aliases are decoded by yaml; their keys are reported
		// at the anchor.
	}
}

// unknownKeys reports every key of the document that Config has no place
// for, with the keys its mapping allows.
func (p *parser) unknownKeys(doc *yaml.Node) {
	for _, u := range yamlkeys.Find(doc, reflect.TypeFor[Config]()) {
		msg := fmt.Sprintf("unknown key %q", u.Key)
		if len(u.Allowed) > 0 {
			msg += "; allowed keys: " + strings.Join(u.Allowed, ", ")
		}
		p.add(u.Line, u.Path, "%s", msg)
	}
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func (p *parser) syntax(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	p.add(line, "", "syntax error: %s", msg)
}

var (
	quotedRE = regexp.MustCompile("`([^`]*)`|^\"([^\"]*)\"")
	cannotRE = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
)

// typeError turns one of yaml's "line N: ..." type errors into an Error
// with the key path and a message that says what is allowed. (Unknown keys
// are not among them: unknownKeys finds those in the node tree.)
func (p *parser) typeError(s string) {
	m := lineRE.FindStringSubmatch(s)
	if m == nil {
		p.add(0, "", "%s", s)
		return
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	paths := p.lines[line]
	path := ""
	if len(paths) > 0 {
		path = paths[0]
	}
	// On a line with several keys (flow style), prefer the key whose
	// value the message quotes.
	if q := quotedRE.FindStringSubmatch(msg); q != nil {
		for _, cand := range paths {
			if v, ok := p.vals[cand]; ok && (v == q[1] || v == q[2]) {
				path = cand
				break
			}
		}
	}
	if c := cannotRE.FindStringSubmatch(msg); c != nil {
		got := c[2]
		if got == "" {
			got = map[string]string{"seq": "a list", "map": "a mapping"}[c[1]]
			if got == "" {
				got = "a " + c[1]
			}
		} else {
			got = strconv.Quote(got)
		}
		msg = fmt.Sprintf("%s is not allowed here; want %s", got, describe(c[3]))
	}
	p.add(line, path, "%s", msg)
}

// describe says in words what a Go type accepts in YAML.
func describe(goType string) string {
	switch {
	case goType == "time.Duration":
		return "a duration like 500ms, 2s or 1m"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping of key: value"
	}
	return "a mapping with the keys " + strings.Join(keysOf(strings.TrimPrefix(goType, "*")), ", ")
}

// keysOf lists the YAML keys of a struct type of this package or of the
// rules package, by its Go name (e.g. "config.Scanner").
func keysOf(typeName string) []string {
	var found []string
	seen := map[reflect.Type]bool{}
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || found != nil {
			return
		}
		seen[t] = true
		if t.String() == typeName {
			found = yamlkeys.Keys(t)
			return
		}
		for i := range t.NumField() {
			visit(t.Field(i).Type)
		}
	}
	visit(reflect.TypeFor[Config]())
	return found
}

// dedupe drops semantic errors about a path that already has a type error,
// or is inside or around one (its value could not be decoded, so anything
// said about it is noise).
func dedupe(es Errors, typeErrs int) Errors {
	related := func(a, b string) bool {
		within := func(x, y string) bool { // x is y or inside it
			return x == y || strings.HasPrefix(x, y+".") || strings.HasPrefix(x, y+"[")
		}
		return within(a, b) || within(b, a)
	}
	out := slices.Clone(es[:typeErrs])
	for _, e := range es[typeErrs:] {
		if !slices.ContainsFunc(es[:typeErrs], func(t Error) bool { return t.Path != "" && related(e.Path, t.Path) }) {
			out = append(out, e)
		}
	}
	return out
}

// Defaults.
const (
	DefaultLedgerPath          = "/var/lib/loyalty/ledger.db"
	DefaultLockTimeout         = time.Second
	DefaultOfflineRedeemLimit  = 1000
	DefaultKeepConfirmedDays   = 14
	DefaultKeepConfirmedMB     = 64
	DefaultBaud                = 9600
	DefaultDataBits            = 8
	DefaultIdleGap             = 50 * time.Millisecond
	DefaultScannerMaxFrame     = 64
	DefaultMagstripeMaxFrame   = 256
	DefaultWiegandBits         = 26
	DefaultDebounce            = 20 * time.Millisecond
	DefaultDisplayWidth        = 20
	DefaultDisplayLines        = 2
	DefaultCodePage            = "cp437"
	DefaultBrightness          = 4
	DefaultDisplayWriteTimeout = time.Second
	DefaultListen              = "127.0.0.1:8080"
	DefaultMaxBody             = 64 << 10
	DefaultWindow              = 32
	DefaultKeepAlive           = 30 * time.Second
	DefaultNoAckFaultAfter     = 5 * time.Minute
	DefaultAckTimeout          = 10 * time.Second
	DefaultReconnectMax        = 5 * time.Second
	DefaultStatusInterval      = 30 * time.Second
	DefaultLookupTimeout       = 1500 * time.Millisecond
	DefaultTopicRoot           = "loyalty/v1"
	DefaultAbandonAfter        = 10 * time.Minute
	DefaultReceiptFor          = 30 * time.Second
	DefaultCardFirstFor        = 2 * time.Minute
	DefaultPromptEvery         = 3 * time.Second
)

func setDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

func serialDefaults(s *Serial, maxFrame int) {
	setDefault(&s.Baud, DefaultBaud)
	setDefault(&s.DataBits, DefaultDataBits)
	setDefault(&s.Parity, "none")
	setDefault(&s.StopBits, "1")
	setDefault(&s.Terminator, "cr")
	setDefault(&s.IdleGap, DefaultIdleGap)
	setDefault(&s.MaxFrame, maxFrame)
}

// defaults fills every omitted key with its documented default.
func (p *parser) defaults(c *Config) {
	setDefault(&c.Register.TimeZone, "UTC")
	setDefault(&c.Register.Language, "en")
	setDefault(&c.Ledger.Path, DefaultLedgerPath)
	setDefault(&c.Ledger.LockTimeout, DefaultLockTimeout)
	if !p.has("ledger.offline_redeem_limit") {
		c.Ledger.OfflineRedeemLimit = DefaultOfflineRedeemLimit
	}
	if !p.has("ledger.keep_confirmed_days") {
		c.Ledger.KeepConfirmedDays = DefaultKeepConfirmedDays
	}
	if !p.has("ledger.keep_confirmed_mb") {
		c.Ledger.KeepConfirmedMB = DefaultKeepConfirmedMB
	}
	if c.Rules != nil {
		setDefault(&c.Rules.TimeZone, c.Register.TimeZone)
	}
	for i := range c.Devices.Scanners {
		serialDefaults(&c.Devices.Scanners[i].Serial, DefaultScannerMaxFrame)
	}
	for i := range c.Devices.Magstripe {
		serialDefaults(&c.Devices.Magstripe[i].Serial, DefaultMagstripeMaxFrame)
	}
	for i := range c.Devices.Wiegand {
		setDefault(&c.Devices.Wiegand[i].Bits, DefaultWiegandBits)
	}
	for i := range c.Devices.Buttons {
		setDefault(&c.Devices.Buttons[i].Debounce, DefaultDebounce)
	}
	d := &c.Devices.Display
	setDefault(&d.Kind, "log")
	setDefault(&d.Baud, DefaultBaud)
	setDefault(&d.Width, DefaultDisplayWidth)
	setDefault(&d.Lines, DefaultDisplayLines)
	setDefault(&d.CodePage, DefaultCodePage)
	setDefault(&d.Brightness, DefaultBrightness)
	setDefault(&d.WriteTimeout, DefaultDisplayWriteTimeout)
	for i := range c.MemberCards.Patterns {
		setDefault(&c.MemberCards.Patterns[i].Check, "none")
	}
	if !p.has("api.listen") {
		c.API.Listen = DefaultListen
	}
	setDefault(&c.API.MaxBody, DefaultMaxBody)
	setDefault(&c.API.ReadTimeout, 30*time.Second)
	setDefault(&c.Kiosk.Language, c.Register.Language)
	setDefault(&c.Checkout.AbandonAfter, DefaultAbandonAfter)
	setDefault(&c.Checkout.ReceiptFor, DefaultReceiptFor)
	if !p.has("checkout.card_first_for") {
		c.Checkout.CardFirstFor = DefaultCardFirstFor
	}
	setDefault(&c.Checkout.PromptEvery, DefaultPromptEvery)
	setDefault(&c.Sync.ClientID, c.Register.ID)
	setDefault(&c.Sync.Window, DefaultWindow)
	setDefault(&c.Sync.KeepAlive, DefaultKeepAlive)
	setDefault(&c.Sync.NoAckFaultAfter, DefaultNoAckFaultAfter)
	setDefault(&c.Sync.AckTimeout, DefaultAckTimeout)
	setDefault(&c.Sync.ReconnectMax, DefaultReconnectMax)
	setDefault(&c.Sync.StatusInterval, DefaultStatusInterval)
	setDefault(&c.Sync.LookupTimeout, DefaultLookupTimeout)
	setDefault(&c.Sync.TopicRoot, DefaultTopicRoot)
	setDefault(&c.Sync.Store, c.Register.StoreID)
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Log.Format, "text")
}

// rulesErrors reports a rule set's validation problems at their lines.
func (p *parser) rulesErrors(err error) {
	var ve rules.ValidationErrors
	if !errors.As(err, &ve) {
		p.addAt("rules", "%v", err)
		return
	}
	for _, fe := range ve {
		p.addAt("rules."+fe.Path, "%s", fe.Msg)
	}
}
