package config

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/device/classify"
	"github.com/loyalty-terminal/loyalty/ledger/phone"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// Allowed values.
var (
	// BaudRates are the standard rates a serial device may use.
	BaudRates = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}
	// CodePages are the display code pages the device layer can map text to.
	// (device/display: CP437 Latin, CP862 Hebrew, CP866 Cyrillic; other
	// scripts are transliterated).
	CodePages = []string{"cp437", "cp862", "cp866"}
	// Actions are what a button or a control code can do.
	Actions = []string{"show_points", "complete", "cancel", "redeem"}
)

var (
	idRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	languageRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
	digitsRE   = regexp.MustCompile(`^[0-9]+$`)
)

type validator struct {
	p   *parser
	cfg *Config
	// names and resources already used, to report duplicates
	deviceNames map[string]string // name -> path where first used
	pins        map[string]string
	serialPaths map[string]string
}

func (v *validator) add(path, format string, args ...any) { v.p.addAt(path, format, args...) }

func quoteAll[T any](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

func (v *validator) oneOf(path, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		v.add(path, "%q is not allowed; use one of %s", got, quoteAll(allowed))
	}
}

// required reports an empty value; hint says what to put there.
func (v *validator) required(path, got, hint string) bool {
	if strings.TrimSpace(got) == "" {
		v.add(path, "is required; %s", hint)
		return false
	}
	return true
}

func (v *validator) intRange(path string, got, lo, hi int64, unit string) {
	if got < lo || got > hi {
		v.add(path, "%d is out of range; use %d to %d%s", got, lo, hi, unit)
	}
}

func (v *validator) durRange(path string, got, lo, hi time.Duration) {
	if got < lo || got > hi {
		v.add(path, "%v is out of range; use %v to %v", got, lo, hi)
	}
}

func (v *validator) validate() {
	c := v.cfg
	v.deviceNames = map[string]string{}
	v.pins = map[string]string{}
	v.serialPaths = map[string]string{}

	// register
	for _, f := range []struct{ path, val string }{{"register.id", c.Register.ID}, {"register.store_id", c.Register.StoreID}} {
		if v.required(f.path, f.val, "an id of letters, digits, '.', '_' or '-', e.g. store1-r1") && !idRE.MatchString(f.val) {
			v.add(f.path, "%q is not a valid id; use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", f.val)
		}
	}
	tzOK := v.timezone("register.timezone", c.Register.TimeZone)
	v.language("register.language", c.Register.Language)
	if c.Register.PhoneRegion != "" {
		if _, err := phone.NewNormalizer(c.Register.PhoneRegion); err != nil {
			v.add("register.phone_region", "%q is not a country code; use an ISO 3166-1 alpha-2 code such as IL, BG or DE", c.Register.PhoneRegion)
		}
	}

	// ledger
	v.required("ledger.path", c.Ledger.Path, "the ledger file, e.g. /var/lib/loyalty/ledger.db")
	v.durRange("ledger.lock_timeout", c.Ledger.LockTimeout, time.Millisecond, time.Minute)
	v.intRange("ledger.offline_redeem_limit", c.Ledger.OfflineRedeemLimit, 0, 1_000_000_000, " points (0 forbids redeeming offline)")
	v.intRange("ledger.keep_confirmed_days", c.Ledger.KeepConfirmedDays, 0, 366, " days (0 forgets confirmed events at once)")
	v.intRange("ledger.keep_confirmed_mb", c.Ledger.KeepConfirmedMB, 1, 4096, " MB")
	if d := c.Ledger.ReplicaDir; d != "" && !filepath.IsAbs(d) {
		v.add("ledger.replica_dir", "%q is not an absolute path; want the folder on the second device, e.g. /media/usb/loyalty", d)
	}

	// rules
	if c.Rules != nil {
		if tzOK && c.Rules.TimeZone != c.Register.TimeZone && v.p.has("rules.timezone") {
			v.add("rules.timezone", "%q differs from register.timezone %q; omit it to use the register's", c.Rules.TimeZone, c.Register.TimeZone)
		}
		if !tzOK && !v.p.has("rules.timezone") {
			c.Rules.TimeZone = "UTC" // the register's zone is already reported
		}
		if err := c.Rules.Validate(); err != nil {
			v.p.rulesErrors(err)
		}
	}

	v.catalogue()
	v.devices()
	v.cards()

	scanned := map[string]string{}
	for _, code := range slices.Sorted(maps.Keys(c.ControlCodes)) {
		action := c.ControlCodes[code]
		p := "control_codes." + code
		k := classify.ControlKey(code)
		if k == "" {
			v.add(p, "a control code must not be empty")
		}
		if other, dup := scanned[k]; dup && c.ControlCodes[other] != action {
			v.add(p, "scans as %q like %q, which has another action; scanners send a code with or without its * and AIM identifier", k, other)
		}
		scanned[k] = code
		v.oneOf(p, action, Actions...)
	}
	v.instore()
	v.api()
	v.language("kiosk.language", c.Kiosk.Language)
	v.durRange("checkout.abandon_after", c.Checkout.AbandonAfter, 10*time.Second, 24*time.Hour)
	v.durRange("checkout.receipt_for", c.Checkout.ReceiptFor, time.Second, 10*time.Minute)
	v.durRange("checkout.card_first_for", c.Checkout.CardFirstFor, 0, 30*time.Minute)
	v.durRange("checkout.prompt_every", c.Checkout.PromptEvery, time.Second, time.Minute)
	v.sync()
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
}

func (v *validator) timezone(path, tz string) bool {
	if tz == "Local" {
		v.add(path, `"Local" depends on the machine; use an IANA name like "Europe/Sofia"`)
		return false
	}
	if _, err := time.LoadLocation(tz); err != nil {
		v.add(path, "unknown time zone %q; use an IANA name like \"Asia/Jerusalem\" or \"UTC\"", tz)
		return false
	}
	return true
}

func (v *validator) language(path, tag string) {
	if !languageRE.MatchString(tag) {
		v.add(path, "%q is not a language tag; use a BCP 47 tag like en, he, bg or pt-BR", tag)
	}
}

// gs1Check returns the GS1 mod-10 check digit for the data digits.
func gs1Check(data string) byte {
	sum := 0
	for i := len(data) - 1; i >= 0; i-- {
		d := int(data[i] - '0')
		if (len(data)-1-i)%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

// gs1Problem says what is wrong with a GS1 code's check digit, or "".
func gs1Problem(code string) string {
	if want := gs1Check(code[:len(code)-1]); code[len(code)-1] != want {
		return fmt.Sprintf("check digit is %c, but %s... needs %c", code[len(code)-1], code[:len(code)-1], want)
	}
	return ""
}

func (v *validator) catalogue() {
	c := v.cfg.Catalogue
	if c.Version < 0 {
		v.add("catalogue.version", "%d is negative; use 0 or more", c.Version)
	}
	// 100,000 items are checked at every start: paths are made only for
	// an item with a problem.
	seen := make(map[string]int, len(c.Items))
	for i, it := range c.Items {
		at := func(key string) string { return "catalogue.items[" + strconv.Itoa(i) + "]." + key }
		if strings.TrimSpace(it.SKU) == "" {
			v.required(at("sku"), it.SKU, "the scanned code, e.g. \"4006381333931\"")
		} else {
			if j, dup := seen[it.SKU]; dup {
				v.add(at("sku"), "duplicate SKU %q (already catalogue.items[%d], line %d); each SKU once", it.SKU, j, v.p.lineOf(fmt.Sprintf("catalogue.items[%d].sku", j)))
			} else {
				seen[it.SKU] = i
			}
			if n := len(it.SKU); (n == 8 || n == 12 || n == 13) && allDigits(it.SKU) {
				if msg := gs1Problem(it.SKU); msg != "" {
					v.add(at("sku"), "%q is not a valid EAN/UPC code: %s", it.SKU, msg)
				}
			} else if len(it.SKU) > 64 || strings.ContainsAny(it.SKU, " \t\r\n") {
				v.add(at("sku"), "%q is not a valid SKU; use up to 64 characters without spaces", it.SKU)
			}
		}
		if strings.TrimSpace(it.Name) == "" {
			v.required(at("name"), it.Name, "the item name shown to the customer")
		}
		if it.Price < 0 || it.Price > rules.MaxAmount {
			v.intRange(at("price"), it.Price, 0, rules.MaxAmount, " minor units")
		}
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (v *validator) name(path, name string) {
	if !v.required(path, name, "a unique device name, e.g. front-scanner") {
		return
	}
	if first, dup := v.deviceNames[name]; dup {
		v.add(path, "device name %q is already used by %s; give each device its own name", name, first)
		return
	}
	v.deviceNames[name] = parent(path)
}

func (v *validator) pin(path, pin string) {
	if pin == "" {
		return
	}
	if first, dup := v.pins[pin]; dup {
		v.add(path, "GPIO line %q is already used by %s", pin, first)
		return
	}
	v.pins[pin] = path
}

func (v *validator) serialPath(path, dev string) {
	if first, dup := v.serialPaths[dev]; dup {
		v.add(path, "%q is already used by %s; a port can be opened once", dev, first)
		return
	}
	v.serialPaths[dev] = path
}

func (v *validator) serial(p string, s Serial) {
	if !s.Simulate {
		if v.required(p+".path", s.Path, "a serial device such as /dev/serial/by-id/usb-...-if00, or simulate: true") {
			v.serialPath(p+".path", s.Path)
		}
	}
	if !slices.Contains(BaudRates, s.Baud) {
		v.add(p+".baud", "%d is not a standard baud rate; use one of %s", s.Baud, quoteAll(BaudRates))
	}
	if s.DataBits < 5 || s.DataBits > 8 {
		v.add(p+".data_bits", "%d is out of range; use 5, 6, 7 or 8", s.DataBits)
	}
	v.oneOf(p+".parity", s.Parity, "none", "odd", "even", "mark", "space")
	v.oneOf(p+".stop_bits", s.StopBits, "1", "1.5", "2")
	v.oneOf(p+".terminator", s.Terminator, "cr", "lf", "crlf", "none")
	v.durRange(p+".idle_gap", s.IdleGap, time.Millisecond, 5*time.Second)
	v.intRange(p+".max_frame", int64(s.MaxFrame), 8, 4096, " bytes")
	if len(s.Prefix) > 16 {
		v.add(p+".prefix", "%q is too long; use at most 16 characters", s.Prefix)
	}
}

func (v *validator) devices() {
	d := v.cfg.Devices
	for i, s := range d.Scanners {
		p := fmt.Sprintf("devices.scanners[%d]", i)
		v.name(p+".name", s.Name)
		v.serial(p, s.Serial)
	}
	for i, s := range d.Magstripe {
		p := fmt.Sprintf("devices.magstripe[%d]", i)
		v.name(p+".name", s.Name)
		v.serial(p, s.Serial)
	}
	for i, w := range d.Wiegand {
		p := fmt.Sprintf("devices.wiegand[%d]", i)
		v.name(p+".name", w.Name)
		if !w.Simulate {
			if v.required(p+".d0", w.D0, "a GPIO line name such as GPIO17, or simulate: true") {
				v.pin(p+".d0", w.D0)
			}
			if v.required(p+".d1", w.D1, "a GPIO line name such as GPIO27, or simulate: true") {
				v.pin(p+".d1", w.D1)
			}
		}
		if w.Bits != 26 && w.Bits != 34 {
			v.add(p+".bits", "%d is not supported; use 26 or 34", w.Bits)
		}
	}
	for i, b := range d.Buttons {
		p := fmt.Sprintf("devices.buttons[%d]", i)
		if b.Name != "" {
			v.name(p+".name", b.Name)
		}
		if v.required(p+".pin", b.Pin, "a GPIO line name such as GPIO5") {
			v.pin(p+".pin", b.Pin)
		}
		v.oneOf(p+".action", b.Action, Actions...)
		v.durRange(p+".debounce", b.Debounce, time.Millisecond, time.Second)
	}
	o := d.Outputs
	v.pin("devices.outputs.buzzer", o.Buzzer)
	v.pin("devices.outputs.ok_led", o.OKLED)
	v.pin("devices.outputs.error_led", o.ErrorLED)
	v.pin("devices.outputs.offline_led", o.OfflineLED)

	s := d.Display
	const p = "devices.display"
	v.oneOf(p+".kind", s.Kind, "cd5220", "escpos", "log")
	if s.Kind != "log" && !s.Simulate {
		if s.Path == "" {
			v.add(p+".path", "is required for a %s display (or set simulate: true)", s.Kind)
		} else {
			v.serialPath(p+".path", s.Path)
		}
	}
	if !slices.Contains(BaudRates, s.Baud) {
		v.add(p+".baud", "%d is not a standard baud rate; use one of %s", s.Baud, quoteAll(BaudRates))
	}
	v.intRange(p+".width", int64(s.Width), 1, 80, " columns")
	v.intRange(p+".lines", int64(s.Lines), 1, 4, " lines")
	v.oneOf(p+".code_page", s.CodePage, CodePages...)
	v.intRange(p+".brightness", int64(s.Brightness), 1, 4, "")
	v.durRange(p+".write_timeout", s.WriteTimeout, 50*time.Millisecond, 30*time.Second)
}

func (v *validator) cards() {
	m := v.cfg.MemberCards
	for i, pt := range m.Patterns {
		p := fmt.Sprintf("member_cards.patterns[%d]", i)
		v.intRange(p+".length", int64(pt.Length), 4, 32, " characters")
		if len(pt.Prefix) >= pt.Length && pt.Length >= 4 {
			v.add(p+".prefix", "%q leaves no room for a number of length %d", pt.Prefix, pt.Length)
		}
		v.oneOf(p+".check", pt.Check, "none", "mod10", "luhn")
	}
	for i, r := range m.Ranges {
		p := fmt.Sprintf("member_cards.ranges[%d]", i)
		okFrom := v.instoreEAN(p+".from", r.From)
		okTo := v.instoreEAN(p+".to", r.To)
		if okFrom && okTo && r.To < r.From {
			v.add(p+".to", "%s is below from (%s)", r.To, r.From)
		}
	}
}

func (v *validator) instoreEAN(path, code string) bool {
	if !v.required(path, code, "13 digits starting 20..29") {
		return false
	}
	if len(code) != 13 || !digitsRE.MatchString(code) || code[0] != '2' {
		v.add(path, "%q is not an in-store EAN-13; use 13 digits starting 20..29", code)
		return false
	}
	if msg := gs1Problem(code); msg != "" {
		v.add(path, "%q: %s", code, msg)
		return false
	}
	return true
}

func (v *validator) instore() {
	seen := map[string]int{}
	for i, ip := range v.cfg.InstorePrefixes {
		p := fmt.Sprintf("instore_prefixes[%d]", i)
		if len(ip.Prefix) < 2 || len(ip.Prefix) > 4 || !digitsRE.MatchString(ip.Prefix) || ip.Prefix[0] != '2' {
			v.add(p+".prefix", "%q is not an in-store prefix; use 2 to 4 digits starting 20..29", ip.Prefix)
		} else if j, dup := seen[ip.Prefix]; dup {
			v.add(p+".prefix", "%q is already instore_prefixes[%d]", ip.Prefix, j)
		} else {
			seen[ip.Prefix] = i
		}
		v.oneOf(p+".kind", ip.Kind, "price", "weight")
		inner := 0
		if ip.InnerCheck {
			inner = 1
		}
		if ip.ArticleDigits < 1 || ip.ValueDigits < 1 || len(ip.Prefix)+ip.ArticleDigits+inner+ip.ValueDigits+1 != 13 {
			v.add(p, "prefix (%d) + article_digits (%d) + inner_check (%d) + value_digits (%d) + check digit (1) must make 13 digits",
				len(ip.Prefix), ip.ArticleDigits, inner, ip.ValueDigits)
		}
	}
}

func (v *validator) api() {
	a := v.cfg.API
	switch a.Listen {
	case "off":
		if a.Socket == "" {
			v.add("api.listen", `is "off" and api.socket is not set; the API needs one of them`)
		}
	default:
		host, port, err := net.SplitHostPort(a.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			v.add("api.listen", "%q is not a host:port address; use e.g. 127.0.0.1:8080, or off", a.Listen)
			break
		}
		ip := net.ParseIP(host)
		loop := host == "localhost" || (ip != nil && ip.IsLoopback())
		if !loop && a.TokenFile == "" {
			v.add("api.listen", "%q is not a loopback address; set api.token_file to let other callers in", a.Listen)
		}
	}
	if a.Token != "" {
		v.add("api.token", "a token does not belong in the config file; write it to a file (mode 0600) and name it in api.token_file")
	}
	for i, h := range a.Hosts {
		if h == "" || strings.ContainsAny(h, "/:@ ") && net.ParseIP(strings.Trim(h, "[]")) == nil {
			v.add("api.hosts", "entry %d %q is not a host name or IP address", i+1, h)
		}
	}
	v.durRange("api.read_timeout", a.ReadTimeout, time.Second, 10*time.Minute)
	v.intRange("api.max_body", a.MaxBody, 1024, 16<<20, " bytes")
	switch {
	case (a.TLSCertFile == "") != (a.TLSKeyFile == ""):
		v.add("api.tls_cert_file", "tls_cert_file and tls_key_file go together (PEM certificate and its key)")
	case a.TLSCertFile != "" && a.Listen == "off":
		v.add("api.tls_cert_file", `is set but api.listen is "off": TLS is for the TCP listener`)
	case a.TLSCertFile != "":
		if _, err := tls.LoadX509KeyPair(a.TLSCertFile, a.TLSKeyFile); err != nil {
			v.add("api.tls_cert_file", "%s with %s: %v", a.TLSCertFile, a.TLSKeyFile, err)
		}
	}
}

func (v *validator) sync() {
	s := v.cfg.Sync
	if s.Enabled && v.required("sync.broker", s.Broker, "an MQTT URL such as tls://hq.example.com:8883, or enabled: false") {
		u, err := url.Parse(s.Broker)
		schemes := []string{"tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"}
		if err != nil || !slices.Contains(schemes, u.Scheme) || u.Host == "" {
			v.add("sync.broker", "%q is not a broker URL; use e.g. tls://hq.example.com:8883 (schemes %s)", s.Broker, quoteAll(schemes))
		}
		if u != nil && u.User != nil {
			v.add("sync.broker", "must not hold credentials; use sync.username and sync.password_file")
		}
		if u != nil && plainScheme(u.Scheme) && s.PasswordFile != "" && !loopbackHost(u.Hostname()) && !s.Insecure {
			v.add("sync.broker", "%q sends the password in plain text to another machine; use tls:// (or set sync.insecure: true on a trusted network)", s.Broker)
		}
	}
	if s.Enabled && len(s.HQKeys) == 0 {
		v.add("sync.enabled", "sync needs sync.hq_keys: head office's public key (loyalty-hq keys generate prints it), or enabled: false")
	}
	if len(s.HQKeys) > 0 {
		if _, err := signing.ParseKeyring(s.HQKeys); err != nil {
			v.add("sync.hq_keys", "%v; give 1 key, or 2 during a rotation, each \"ed25519:<base64>\" as loyalty-hq keys generate prints it", err)
		}
	}
	if s.Enabled && !idRE.MatchString(s.ClientID) {
		v.add("sync.client_id", "%q is not a valid client id; use 1-64 letters, digits, '.', '_' or '-'", s.ClientID)
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		v.add("sync.key_file", "cert_file and key_file go together; set both or neither")
	}
	if s.PasswordFile != "" && s.Username == "" {
		v.add("sync.username", "is required when password_file is set")
	}
	v.intRange("sync.window", int64(s.Window), 1, 1000, " messages")
	v.durRange("sync.keepalive", s.KeepAlive, time.Second, 10*time.Minute)
	v.durRange("sync.no_ack_fault_after", s.NoAckFaultAfter, 10*time.Second, 24*time.Hour)
	v.durRange("sync.ack_timeout", s.AckTimeout, time.Second, 5*time.Minute)
	v.durRange("sync.reconnect_max", s.ReconnectMax, time.Second, 10*time.Minute)
	v.durRange("sync.status_interval", s.StatusInterval, time.Second, 10*time.Minute)
	v.durRange("sync.lookup_timeout", s.LookupTimeout, 100*time.Millisecond, 10*time.Second)
	if s.TopicRoot != DefaultTopicRoot {
		// The root names the protocol version this build speaks
		// (docs/protocol.md "Evolving the protocol"); it is not a setting.
		// The key stays so that configs carrying the default still load.
		v.add("sync.topic_root", "%q is not supported: this register speaks %s only; remove the key (docs/protocol.md, \"Upgrade order\")", s.TopicRoot, DefaultTopicRoot)
	}
	if s.Store != "" && !idRE.MatchString(s.Store) {
		v.add("sync.store", "%q is not a valid id; use letters, digits, '.', '_' or '-'", s.Store)
	}
}

// plainScheme reports whether an MQTT URL scheme sends in plain text.
func plainScheme(scheme string) bool { return scheme == "tcp" || scheme == "mqtt" || scheme == "ws" }

// loopbackHost reports whether host is this machine.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
