package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/config"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

const configsDir = "../../../../configs"

func TestShippedConfigs(t *testing.T) {
	for _, name := range []string{"loyaltyd.dev.yaml", "loyaltyd.example.yaml"} {
		t.Run(name, func(t *testing.T) {
			c, err := config.Load(filepath.Join(configsDir, name))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Rules == nil || len(c.Catalogue.Items) < 3 || c.Register.ID == "" {
				t.Fatalf("incomplete config: %+v", c)
			}
			// The shipped rules score a Tuesday sale at double points.
			out, err := c.Rules.Evaluate(rules.SaleInput{
				Lines:  []rules.LineInput{{No: 1, SKU: c.Catalogue.Items[0].SKU, Category: c.Catalogue.Items[0].Category, Amount: 1000}},
				Member: rules.MemberState{ID: "m", Purchases: 3},
				At:     time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), ClockTrusted: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			if out.Lines[0].Points != 20 {
				t.Errorf("Tuesday sale of 10.00 earned %d, want 20", out.Lines[0].Points)
			}
			if c.Rules.TimeZone != c.Register.TimeZone {
				t.Errorf("rules timezone %q, want the register's %q", c.Rules.TimeZone, c.Register.TimeZone)
			}
		})
	}
}

func TestDevConfig(t *testing.T) {
	c, err := config.Load(filepath.Join(configsDir, "loyaltyd.dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Clock.TrustHost {
		t.Error("the dev config does not trust the host clock: under make run campaigns would silently not apply")
	}
	if c.Ledger.Path != "var/ledger.db" || c.Sync.Enabled || c.Devices.Display.Kind != "log" {
		t.Errorf("dev config: ledger %q sync %v display %q", c.Ledger.Path, c.Sync.Enabled, c.Devices.Display.Kind)
	}
	for _, s := range c.Devices.Scanners {
		if !s.Simulate {
			t.Errorf("dev scanner %s is not simulated", s.Name)
		}
	}
	if _, ok := c.Rules.Reward("coffee"); !ok || c.Rules.ExpiryMonths != 12 || len(c.Rules.Tiers) < 2 {
		t.Errorf("dev rules lack rewards, expiry or tiers: %+v", c.Rules)
	}
}

func TestDefaults(t *testing.T) {
	c, err := config.Parse("min.yaml", []byte("register:\n  id: r1\n  store_id: s1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Clock.TrustHost || c.Clock.SyncedFile != "" {
		t.Errorf("clock defaults: %+v, want the host clock untrusted until NTP", c.Clock)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"timezone", c.Register.TimeZone, "UTC"},
		{"language", c.Register.Language, "en"},
		{"ledger path", c.Ledger.Path, config.DefaultLedgerPath},
		{"lock timeout", c.Ledger.LockTimeout, time.Second},
		{"offline limit", c.Ledger.OfflineRedeemLimit, int64(1000)},
		{"keep confirmed days", c.Ledger.KeepConfirmedDays, int64(14)},
		{"keep confirmed MB", c.Ledger.KeepConfirmedMB, int64(64)},
		{"rules", c.Rules == nil, true},
		{"display kind", c.Devices.Display.Kind, "log"},
		{"display width", c.Devices.Display.Width, 20},
		{"display lines", c.Devices.Display.Lines, 2},
		{"code page", c.Devices.Display.CodePage, "cp437"},
		{"brightness", c.Devices.Display.Brightness, 4},
		{"listen", c.API.Listen, "127.0.0.1:8080"},
		{"max body", c.API.MaxBody, int64(65536)},
		{"kiosk language", c.Kiosk.Language, "en"},
		{"sync client id", c.Sync.ClientID, "r1"},
		{"sync store", c.Sync.Store, "s1"},
		{"sync window", c.Sync.Window, 32},
		{"keepalive", c.Sync.KeepAlive, 30 * time.Second},
		{"ack timeout", c.Sync.AckTimeout, 10 * time.Second},
		{"reconnect cap", c.Sync.ReconnectMax, 5 * time.Second},
		{"lookup timeout", c.Sync.LookupTimeout, 1500 * time.Millisecond},
		{"topic root", c.Sync.TopicRoot, "loyalty/v1"},
		{"log", c.Log, config.Log{Level: "info", Format: "text"}},
		{"checkout", c.Checkout, config.Checkout{AbandonAfter: 10 * time.Minute, ReceiptFor: 30 * time.Second, PromptEvery: 3 * time.Second, CardFirstFor: 2 * time.Minute}},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	// Per-device defaults.
	c, err = config.Parse("dev.yaml", []byte(`register: {id: r1, store_id: s1}
ledger: {offline_redeem_limit: 0}
devices:
  scanners: [{name: s, simulate: true}]
  magstripe: [{name: m, simulate: true}]
  wiegand: [{name: w, simulate: true}]
  buttons: [{pin: GPIO5, action: complete}]
`))
	if err != nil {
		t.Fatal(err)
	}
	sc := c.Devices.Scanners[0].Serial
	want := config.Serial{Baud: 9600, DataBits: 8, Parity: "none", StopBits: "1", Terminator: "cr", IdleGap: 50 * time.Millisecond, MaxFrame: 64, Simulate: true}
	if sc != want {
		t.Errorf("scanner defaults = %+v, want %+v", sc, want)
	}
	if c.Devices.Magstripe[0].MaxFrame != 256 || c.Devices.Wiegand[0].Bits != 26 || c.Devices.Buttons[0].Debounce != 20*time.Millisecond {
		t.Errorf("device defaults: %+v", c.Devices)
	}
	if c.Ledger.OfflineRedeemLimit != 0 {
		t.Errorf("explicit offline_redeem_limit 0 became %d", c.Ledger.OfflineRedeemLimit)
	}
}

const head = "register:\n  id: r1\n  store_id: s1\n" // lines 1-3

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each error in order, as "line: path: fragment"
	}{
		{"unknown key", head + "ledger:\n  path: x.db\n  lock_timout: 2s\n",
			[]string{`x.yaml:6: ledger.lock_timout: unknown key "lock_timout"; allowed keys: path, lock_timeout, offline_redeem_limit`}},
		{"unknown section", head + "printer:\n  kind: x\n",
			[]string{`x.yaml:4: printer: unknown key "printer"; allowed keys: register, ledger, rules,`}},
		{"unknown key in rules", head + "rules:\n  version: 1\n  earn: {points_per_unit: 1}\n  multipler: 2\n",
			[]string{`x.yaml:7: rules.multipler: unknown key "multipler"; allowed keys: version,`}},
		{"unknown key in a flow list item, inline keys allowed", head + "devices:\n  scanners: [{name: a, simulate: true}, {name: b, simulate: true, aim: true, bod: 1}]\n",
			[]string{`x.yaml:5: devices.scanners[1].bod: unknown key "bod"; allowed keys: name, path, baud, data_bits, parity, stop_bits, terminator, idle_gap, prefix, max_frame, simulate, aim`}},
		{"unknown keys in an anchored mapping and in a merge", head + "ledger: &l\n  path: x.db\n  colour: red\nkiosk:\n  <<: {language: en, size: 3}\n",
			[]string{`x.yaml:6: ledger.colour: unknown key "colour"`, `x.yaml:8: kiosk.size: unknown key "size"`}},
		{"wrong type", head + "ledger:\n  offline_redeem_limit: lots\n",
			[]string{`x.yaml:5: ledger.offline_redeem_limit: "lots" is not allowed here; want a whole number`}},
		{"wrong duration", head + "ledger:\n  lock_timeout: soon\n",
			[]string{`x.yaml:5: ledger.lock_timeout: "soon" is not allowed here; want a duration like 500ms, 2s or 1m`}},
		{"keep confirmed too long", head + "ledger:\n  keep_confirmed_days: 400\n",
			[]string{`x.yaml:5: ledger.keep_confirmed_days: `}},
		{"keep confirmed bytes zero", head + "ledger:\n  keep_confirmed_mb: 0\n",
			[]string{`x.yaml:5: ledger.keep_confirmed_mb: `}},
		{"abandon too short", head + "checkout:\n  abandon_after: 1s\n",
			[]string{`x.yaml:5: checkout.abandon_after: `}},
		{"receipt too long", head + "checkout:\n  receipt_for: 1h\n",
			[]string{`x.yaml:5: checkout.receipt_for: `}},
		{"prompt_every not a duration", head + "checkout:\n  prompt_every: often\n",
			[]string{`x.yaml:5: checkout.prompt_every: "often" is not allowed here; want a duration`}},
		{"list for mapping", head + "api: [1, 2]\n",
			[]string{`x.yaml:4: api: a list is not allowed here; want a mapping with the keys listen, socket, token, token_file, metrics_token_file, hosts, read_timeout, max_body, tls_cert_file, tls_key_file`}},
		{"bad baud", head + "devices:\n  scanners:\n    - name: s\n      simulate: true\n      baud: 9601\n",
			[]string{`x.yaml:8: devices.scanners[0].baud: 9601 is not a standard baud rate; use one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200`}},
		{"bad enum", head + "devices:\n  scanners:\n    - name: s\n      simulate: true\n      terminator: semicolon\n",
			[]string{`x.yaml:8: devices.scanners[0].terminator: "semicolon" is not allowed; use one of cr, lf, crlf, none`}},
		{"bad button action", head + "devices:\n  buttons:\n    - pin: GPIO5\n      action: dance\n",
			[]string{`x.yaml:7: devices.buttons[0].action: "dance" is not allowed; use one of show_points, complete, cancel, redeem`}},
		{"reconnect cap too long", head + "sync:\n  reconnect_max: 1h\n",
			[]string{`x.yaml:5: sync.reconnect_max: `}},
		{"lookup timeout too short", head + "sync:\n  lookup_timeout: 1ms\n",
			[]string{`x.yaml:5: sync.lookup_timeout: `}},
		{"out of range", head + "devices:\n  display:\n    brightness: 9\n",
			[]string{`x.yaml:6: devices.display.brightness: 9 is out of range; use 1 to 4`}},
		{"missing required", "register:\n  id: r1\n",
			[]string{`x.yaml:1: register.store_id: is required; an id of letters, digits`}},
		{"missing section", "log:\n  level: info\n",
			[]string{`x.yaml: register.id: is required`, `x.yaml: register.store_id: is required`}},
		{"missing device path", head + "devices:\n  scanners:\n    - name: s\n",
			[]string{`x.yaml:6: devices.scanners[0].path: is required; a serial device such as /dev/serial/by-id/usb-...-if00, or simulate: true`}},
		{"duplicate sku", head + "catalogue:\n  items:\n    - {sku: \"4006381333931\", name: pen}\n    - {sku: \"5901234123457\", name: bar}\n    - {sku: \"4006381333931\", name: pen again}\n",
			[]string{`x.yaml:8: catalogue.items[2].sku: duplicate SKU "4006381333931" (already catalogue.items[0], line 6)`}},
		{"bad check digit", head + "catalogue:\n  items:\n    - sku: \"4006381333932\"\n      name: pen\n",
			[]string{`x.yaml:6: catalogue.items[0].sku: "4006381333932" is not a valid EAN/UPC code: check digit is 2, but 400638133393... needs 1`}},
		{"invalid rule set", head + "rules:\n  version: 1\n  earn:\n    points_per_unit: 1\n  campaigns:\n    - id: a\n      weekdays: [tue]\n      multiplier: 2\n    - id: b\n      weekdays: [tue]\n      multiplier: 20\n",
			[]string{`x.yaml:14: rules.campaigns[1].multiplier: must be between 1 and 10 (got 20)`}},
		{"rule set missing earn", head + "rules:\n  version: 1\n",
			[]string{`x.yaml:4: rules.earn: set points_per_unit or percent_back`}},
		{"bad decimal", head + "rules:\n  version: 1\n  earn: {points_per_unit: 0.00001}\n",
			[]string{`x.yaml:6: rules.earn.points_per_unit: "0.00001" must be a decimal number with at most 4 decimal places`}},
		{"rules timezone mismatch", head + "  timezone: Europe/Sofia\nrules:\n  version: 1\n  timezone: Asia/Jerusalem\n  earn: {points_per_unit: 1}\n",
			[]string{`x.yaml:7: rules.timezone: "Asia/Jerusalem" differs from register.timezone "Europe/Sofia"`}},
		{"bad timezone", head + "  timezone: Mars/Base\n",
			[]string{`x.yaml:4: register.timezone: unknown time zone "Mars/Base"`}},
		{"syntax error", head + "ledger:\n  path: x\n   lock_timeout: 1s\n",
			[]string{`x.yaml:6: syntax error: mapping values are not allowed in this context`}},
		{"tab indent", head + "ledger:\n\tpath: x\n",
			[]string{`x.yaml:5: syntax error: found character that cannot start any token`}},
		{"duplicate key", head + "ledger:\n  path: a\n  path: b\n",
			[]string{`x.yaml:6: ledger.path: mapping key "path" already defined at line 5`}},
		{"two documents", head + "---\nregister: {id: r2}\n",
			[]string{`x.yaml:4: a second YAML document`}},
		{"not a mapping", "- a\n- b\n",
			[]string{`x.yaml:1: the file must be a mapping`}},
		{"duplicate device name", head + "devices:\n  scanners:\n    - {name: a, simulate: true}\n  magstripe:\n    - {name: a, simulate: true}\n",
			[]string{`x.yaml:8: devices.magstripe[0].name: device name "a" is already used by devices.scanners[0]`}},
		{"gpio used twice", head + "devices:\n  wiegand:\n    - {name: w, d0: GPIO17, d1: GPIO27}\n  buttons:\n    - {pin: GPIO17, action: complete}\n",
			[]string{`x.yaml:8: devices.buttons[0].pin: GPIO line "GPIO17" is already used by devices.wiegand[0].d0`}},
		{"wiegand bits", head + "devices:\n  wiegand:\n    - {name: w, simulate: true, bits: 32}\n",
			[]string{`x.yaml:6: devices.wiegand[0].bits: 32 is not supported; use 26 or 34`}},
		{"serial port twice", head + "devices:\n  scanners:\n    - {name: a, path: /dev/ttyUSB0}\n  display:\n    kind: cd5220\n    path: /dev/ttyUSB0\n",
			[]string{`x.yaml:9: devices.display.path: "/dev/ttyUSB0" is already used by devices.scanners[0].path`}},
		{"display needs path", head + "devices:\n  display:\n    kind: escpos\n",
			[]string{`x.yaml:5: devices.display.path: is required for a escpos display (or set simulate: true)`}},
		{"public api without token", head + "api:\n  listen: 0.0.0.0:8080\n",
			[]string{`x.yaml:5: api.listen: "0.0.0.0:8080" is not a loopback address; set api.token_file`}},
		{"tls cert without key", head + "api:\n  tls_cert_file: /etc/loyalty/api.crt\n",
			[]string{`x.yaml:5: api.tls_cert_file: tls_cert_file and tls_key_file go together`}},
		{"tls files unreadable", head + "api:\n  tls_cert_file: /nonexistent.crt\n  tls_key_file: /nonexistent.key\n",
			[]string{`x.yaml:5: api.tls_cert_file: /nonexistent.crt with /nonexistent.key`}},
		{"inline api token", head + "api:\n  token: 0123456789abcdef0123\n",
			[]string{`x.yaml:5: api.token: a token does not belong in the config file`}},
		{"api listen garbage", head + "api:\n  listen: localhost\n",
			[]string{`x.yaml:5: api.listen: "localhost" is not a host:port address`}},
		{"sync without broker", head + "sync:\n  enabled: true\n  hq_keys: [\"ed25519:laf+jlzZWfSEdR7s+wvlQc9W6E+G6ZMx2rjVrp0WFP0=\"]\n",
			[]string{`x.yaml:4: sync.broker: is required`}},
		{"sync without head-office key", head + "sync:\n  enabled: true\n  broker: tls://hq:8883\n",
			[]string{`x.yaml:5: sync.enabled: sync needs sync.hq_keys`}},
		{"bad head-office key", head + "sync:\n  hq_keys: [\"ed25519:AAAA\"]\n",
			[]string{`x.yaml:5: sync.hq_keys: signing: invalid key`}},
		{"three head-office keys", head + "sync:\n  hq_keys: [\"ed25519:laf+jlzZWfSEdR7s+wvlQc9W6E+G6ZMx2rjVrp0WFP0=\", \"ed25519:laf+jlzZWfSEdR7s+wvlQc9W6E+G6ZMx2rjVrp0WFP0=\", \"ed25519:laf+jlzZWfSEdR7s+wvlQc9W6E+G6ZMx2rjVrp0WFP0=\"]\n",
			[]string{`x.yaml:5: sync.hq_keys: signing: invalid key: 3 keys`}},
		{"password in plain text to another machine", head + "sync:\n  enabled: true\n  broker: tcp://hq.example:1883\n  username: r1\n  password_file: /etc/p\n  hq_keys: [\"ed25519:laf+jlzZWfSEdR7s+wvlQc9W6E+G6ZMx2rjVrp0WFP0=\"]\n",
			[]string{`x.yaml:6: sync.broker: "tcp://hq.example:1883" sends the password in plain text`}},
		{"sync bad broker", head + "sync:\n  enabled: true\n  broker: http://hq\n  hq_keys: [\"ed25519:laf+jlzZWfSEdR7s+wvlQc9W6E+G6ZMx2rjVrp0WFP0=\"]\n",
			[]string{`x.yaml:6: sync.broker: "http://hq" is not a broker URL`}},
		{"cert without key", head + "sync:\n  cert_file: /etc/c.pem\n",
			[]string{`x.yaml:4: sync.key_file: cert_file and key_file go together`}},
		{"topic wildcard", head + "sync:\n  topic_root: loyalty/#\n",
			[]string{`x.yaml:5: sync.topic_root: "loyalty/#" is not supported: this register speaks loyalty/v1 only`}},
		{"topic root v2", head + "sync:\n  topic_root: loyalty/v2\n",
			[]string{`x.yaml:5: sync.topic_root: "loyalty/v2" is not supported: this register speaks loyalty/v1 only`}},
		{"control code action", head + "control_codes:\n  \"*TOTAL*\": finish\n",
			[]string{`x.yaml:5: control_codes.*TOTAL*: "finish" is not allowed; use one of show_points, complete, cancel, redeem`}},
		{"instore layout", head + "instore_prefixes:\n  - {prefix: \"21\", kind: weight, article_digits: 5, value_digits: 6}\n",
			[]string{`x.yaml:5: instore_prefixes[0]: prefix (2) + article_digits (5) + inner_check (0) + value_digits (6) + check digit (1) must make 13 digits`}},
		{"card range", head + "member_cards:\n  ranges:\n    - {from: \"2990000000002\", to: \"2990000000001\"}\n",
			[]string{`x.yaml:6: member_cards.ranges[0].to: "2990000000001": check digit is 1, but 299000000000... needs 2`}},
		{"card pattern", head + "member_cards:\n  patterns:\n    - {prefix: M, length: 9, check: crc}\n",
			[]string{`x.yaml:6: member_cards.patterns[0].check: "crc" is not allowed; use one of none, mod10, luhn`}},
		{"log level", head + "log:\n  level: verbose\n",
			[]string{`x.yaml:5: log.level: "verbose" is not allowed; use one of debug, info, warn, error`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("x.yaml", []byte(tt.yaml))
			if c != nil || !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Parse = %v, %v; want nil and ErrInvalid", c, err)
			}
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not config.Errors", err)
			}
			if len(es) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(es), len(tt.want), err)
			}
			for i, w := range tt.want {
				if got := es[i].Error(); !strings.HasPrefix(got, w) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, got, w)
				}
			}
		})
	}
}

// TestAckTimeout: sync.ack_timeout takes a duration from 1s to 5m, 10s
// when absent or 0s; anything else is refused with its line, the key and
// what to write instead.
func TestAckTimeout(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Duration
		err         string // prefix of the one error; "" = none
	}{
		{"absent", "", 10 * time.Second, ""},
		{"zero is the default", "0s", 10 * time.Second, ""},
		{"short for tests", "2s", 2 * time.Second, ""},
		{"lowest", "1s", time.Second, ""},
		{"highest", "5m", 5 * time.Minute, ""},
		{"milliseconds", "1500ms", 1500 * time.Millisecond, ""},
		{"too short", "500ms", 0, `x.yaml:5: sync.ack_timeout: 500ms is out of range; use 1s to 5m0s`},
		{"too long", "1h", 0, `x.yaml:5: sync.ack_timeout: 1h0m0s is out of range; use 1s to 5m0s`},
		{"negative", "-10s", 0, `x.yaml:5: sync.ack_timeout: -10s is out of range; use 1s to 5m0s`},
		{"not a duration", "soon", 0, `x.yaml:5: sync.ack_timeout: "soon" is not allowed here; want a duration like 500ms, 2s or 1m`},
		{"no unit", "10", 0, `x.yaml:5: sync.ack_timeout: "10" is not allowed here; want a duration like 500ms, 2s or 1m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := head + "sync:\n  window: 32\n"
			if tt.value != "" {
				doc = head + "sync:\n  ack_timeout: " + tt.value + "\n"
			}
			c, err := config.Parse("x.yaml", []byte(doc))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Sync.AckTimeout != tt.want {
					t.Fatalf("sync.ack_timeout = %v, want %v", c.Sync.AckTimeout, tt.want)
				}
				return
			}
			var es config.Errors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Fatalf("Parse = %v, %v; want one error %s...", c, err, tt.err)
			}
			if got := es[0].Error(); !strings.HasPrefix(got, tt.err) {
				t.Fatalf("error:\n got %s\nwant %s...", got, tt.err)
			}
		})
	}
}

// TestAllErrorsAtOnce checks that one pass reports every problem, in line
// order, not just the first.
func TestAllErrorsAtOnce(t *testing.T) {
	doc := `register:
  id: r1
  store_id: s1
  colour: blue
ledger:
  lock_timeout: forever
devices:
  scanners:
    - name: s
      simulate: true
      baud: 14400
      parity: maybe
catalogue:
  items:
    - {sku: "1", name: a, price: -5}
    - {sku: "1", name: b}
log:
  format: xml
`
	_, err := config.Parse("many.yaml", []byte(doc))
	var es config.Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		"many.yaml:4: register.colour:",
		"many.yaml:6: ledger.lock_timeout:",
		"many.yaml:11: devices.scanners[0].baud:",
		"many.yaml:12: devices.scanners[0].parity:",
		"many.yaml:15: catalogue.items[0].price:",
		"many.yaml:16: catalogue.items[1].sku: duplicate SKU",
		"many.yaml:18: log.format:",
	}
	if len(es) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(es), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(es[i].Error(), w) {
			t.Errorf("error %d = %s, want prefix %s", i, es[i], w)
		}
	}
}

func TestLoad(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte(head+"ledger: {path: 5s, lock_timeout: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":4: ledger.lock_timeout:") {
		t.Errorf("err = %v, want it to name %s:4", err, p)
	}
	if _, err := config.Parse("big.yaml", make([]byte, config.MaxSize+1)); !errors.Is(err, config.ErrInvalid) {
		t.Errorf("oversize file: err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"loyaltyd.dev.yaml", "loyaltyd.example.yaml"} {
		if data, err := os.ReadFile(filepath.Join(configsDir, name)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(head))
	f.Add([]byte(head + "rules: {version: 1, earn: {percent_back: 5}, campaigns: [{id: a, multiplier: 2, weekdays: [tue]}]}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("register: {id: r, store_id: s}\ncontrol_codes: {\"\": cancel}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("f.yaml", data)
		if err != nil {
			if c != nil || !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Parse = %v, %v", c, err)
			}
			var es config.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %v is not a non-empty Errors", err)
			}
			for _, e := range es {
				if e.File != "f.yaml" || e.Msg == "" {
					t.Fatalf("error without file or message: %+v", e)
				}
			}
			return
		}
		if c.Register.ID == "" || c.Register.StoreID == "" {
			t.Fatalf("accepted a config without register id: %+v", c.Register)
		}
		if c.Rules != nil {
			if err := c.Rules.Validate(); err != nil {
				t.Fatalf("accepted invalid rules: %v", err)
			}
		}
	})
}

func TestControlCodesScannedAlike(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.yaml")
	doc := "register: {id: r1, store_id: s1}\ncontrol_codes:\n  \"*TOTAL*\": complete\n  TOTAL: cancel\n"
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(p)
	if err == nil || !strings.Contains(err.Error(), `scans as "TOTAL" like "*TOTAL*"`) {
		t.Fatalf("two codes scanned alike with different actions: %v", err)
	}
}
