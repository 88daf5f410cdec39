package config

import (
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// Config is the whole configuration of one register.
type Config struct {
	Register Register `yaml:"register"`
	Ledger   Ledger   `yaml:"ledger"`
	// Rules is the local points rule set. Nil (no rules section) means the
	// ledger keeps the rule set it already has (e.g. one sent by head
	// office). Its timezone defaults to register.timezone.
	Rules     *rules.RuleSet `yaml:"rules"`
	Catalogue Catalogue      `yaml:"catalogue"`
	Devices   Devices        `yaml:"devices"`
	// MemberCards says which scanned numbers are member cards.
	MemberCards MemberCards `yaml:"member_cards"`
	// ControlCodes maps a code printed on the cashier sheet (e.g. "*TOTAL*")
	// to an action: show_points, complete, cancel or redeem.
	ControlCodes map[string]string `yaml:"control_codes"`
	// InstorePrefixes are GS1 in-store (20-29) label layouts with an
	// embedded price or weight.
	InstorePrefixes []InstorePrefix `yaml:"instore_prefixes"`
	API             API             `yaml:"api"`
	Kiosk           Kiosk           `yaml:"kiosk"`
	Checkout        Checkout        `yaml:"checkout"`
	Sync            Sync            `yaml:"sync"`
	Log             Log             `yaml:"log"`
	Clock           Clock           `yaml:"clock"`
}

// Clock says when the register's wall clock is trusted. A Raspberry Pi has
// no real-time clock: it boots in 1970 and its time is trusted once NTP has
// synchronised it; until then campaigns, expiry, tiers and prompts wait.
type Clock struct {
	// TrustHost trusts this machine's clock as if NTP had synchronised it:
	// for a development machine (the dev config, make run) whose clock is
	// right but not NTP-disciplined. Never on a register: the daemon logs a
	// warning at start. Default false.
	TrustHost bool `yaml:"trust_host"`
	// SyncedFile is the flag file whose presence says NTP synchronised the
	// clock; default /run/systemd/timesync/synchronized
	// (systemd-timesyncd). The kernel's NTP status counts too.
	SyncedFile string `yaml:"synced_file"`
}

// Register says which register this is.
type Register struct {
	ID      string `yaml:"id"`       // required; letters, digits, '.', '_', '-'
	StoreID string `yaml:"store_id"` // required; same characters
	// TimeZone is the store's IANA time zone; default "UTC".
	TimeZone string `yaml:"timezone"`
	// Language is a BCP 47 tag for the display and kiosk; default "en".
	Language string `yaml:"language"`
	// PhoneRegion is the ISO 3166-1 alpha-2 country whose phone numbers
	// are typed without a country code here ("IL": 050-123 4567 is
	// +972501234567). Empty: only numbers with a country code are
	// understood. Phone numbers are stored and matched in E.164.
	PhoneRegion string `yaml:"phone_region"`
}

// Ledger configures the local bbolt ledger.
type Ledger struct {
	// Path of the ledger file; default /var/lib/loyalty/ledger.db. A
	// relative path is relative to the daemon's working directory.
	Path string `yaml:"path"`
	// LockTimeout bounds the wait for the file lock; default 1s.
	LockTimeout time.Duration `yaml:"lock_timeout"`
	// OfflineRedeemLimit is the most points a member may redeem while head
	// office is unreachable; default 1000; 0 forbids offline redemption.
	OfflineRedeemLimit int64 `yaml:"offline_redeem_limit"`
	// KeepConfirmedDays is how many days events stay in the ledger after
	// head office confirmed them, so a head office restored from an older
	// backup gets them again (docs/operations.md); default 14, 0 forgets
	// them at once. KeepConfirmedMB bounds what is kept, oldest first;
	// default 64.
	KeepConfirmedDays int64 `yaml:"keep_confirmed_days"`
	KeepConfirmedMB   int64 `yaml:"keep_confirmed_mb"`
	// ReplicaDir, when set, is a folder on a second device (a USB stick
	// or a second partition) that keeps a continuous copy of the ledger:
	// a snapshot plus every event within about a second (ledger/replica,
	// docs/operations.md). A full, missing or failing device is a warning,
	// never an outage.
	ReplicaDir string `yaml:"replica_dir"`
}

// Catalogue is the local item catalogue.
type Catalogue struct {
	Version int    `yaml:"version"` // increases with every change; default 0
	Items   []Item `yaml:"items"`
}

// Item is one catalogue entry.
type Item struct {
	// SKU is the scanned code; an 8-, 12- or 13-digit SKU must carry a
	// valid GS1 check digit. Unique in the catalogue.
	SKU      string `yaml:"sku"`
	Name     string `yaml:"name"`     // required
	Price    int64  `yaml:"price"`    // minor units, 0..10^12
	Category string `yaml:"category"` // optional; rules use it for rates
}

// Devices lists the register's hardware.
type Devices struct {
	Scanners  []Scanner   `yaml:"scanners"`
	Magstripe []Magstripe `yaml:"magstripe"`
	Wiegand   []Wiegand   `yaml:"wiegand"`
	Buttons   []Button    `yaml:"buttons"`
	Outputs   Outputs     `yaml:"outputs"`
	// Display is the customer display; default a "log" display.
	Display Display `yaml:"display"`
}

// Serial holds the settings shared by every serial device.
type Serial struct {
	// Path is the device, best a stable /dev/serial/by-id/... name;
	// required unless Simulate.
	Path     string `yaml:"path"`
	Baud     int    `yaml:"baud"`      // default 9600; a standard rate
	DataBits int    `yaml:"data_bits"` // 5-8, default 8
	Parity   string `yaml:"parity"`    // none (default), odd, even, mark, space
	StopBits string `yaml:"stop_bits"` // "1" (default), "1.5", "2"
	// Terminator ends a frame: cr (default), lf, crlf, or none (a frame
	// ends after IdleGap of silence).
	Terminator string        `yaml:"terminator"`
	IdleGap    time.Duration `yaml:"idle_gap"` // default 50ms
	Prefix     string        `yaml:"prefix"`   // stripped from each frame
	MaxFrame   int           `yaml:"max_frame"`
	// Simulate replaces the device with a pseudo-terminal the daemon
	// creates (and prints the path of), for development.
	Simulate bool `yaml:"simulate"`
}

// Scanner is a serial barcode scanner. MaxFrame defaults to 64.
type Scanner struct {
	Name   string `yaml:"name"` // required, unique among devices
	Serial `yaml:",inline"`
	AIM    bool `yaml:"aim"` // frames start with AIM identifiers (]E0...)
}

// Magstripe is a serial magnetic-stripe reader. MaxFrame defaults to 256.
type Magstripe struct {
	Name   string `yaml:"name"`
	Serial `yaml:",inline"`
}

// Wiegand is a Wiegand card reader on two GPIO lines.
type Wiegand struct {
	Name     string `yaml:"name"`
	D0       string `yaml:"d0"`   // GPIO line name, e.g. GPIO17; required unless Simulate
	D1       string `yaml:"d1"`   // e.g. GPIO27
	Bits     int    `yaml:"bits"` // 26 (default) or 34
	Simulate bool   `yaml:"simulate"`
}

// Button is a GPIO push button mapped to a cashier or customer action.
type Button struct {
	Name string `yaml:"name"` // optional
	Pin  string `yaml:"pin"`  // required
	// Action is show_points, complete, cancel or redeem.
	Action   string        `yaml:"action"`
	Debounce time.Duration `yaml:"debounce"` // default 20ms, 1ms..1s
}

// Outputs are the GPIO lines of the cashier's signals; each optional.
type Outputs struct {
	Buzzer     string `yaml:"buzzer"`
	OKLED      string `yaml:"ok_led"`
	ErrorLED   string `yaml:"error_led"`
	OfflineLED string `yaml:"offline_led"`
}

// Display is the customer pole display.
type Display struct {
	// Kind is cd5220, escpos or log (default: text on the daemon's log).
	Kind string `yaml:"kind"`
	// Path is the serial device; required for cd5220 and escpos unless
	// Simulate.
	Path     string `yaml:"path"`
	Baud     int    `yaml:"baud"`      // default 9600
	Width    int    `yaml:"width"`     // columns, default 20, 1..80
	Lines    int    `yaml:"lines"`     // default 2, 1..4
	CodePage string `yaml:"code_page"` // default cp437; see CodePages
	// Brightness 1..4, default 4; sent whenever the display is
	// initialised.
	Brightness int `yaml:"brightness"`
	// WriteTimeout: a display that takes no byte for this long is
	// reported stuck (health degraded) and retried; default 1s, 50ms..30s.
	// The checkout never waits for the display.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	Simulate     bool          `yaml:"simulate"`
}

// MemberCards says which scanned numbers are member cards.
type MemberCards struct {
	Patterns []CardPattern `yaml:"patterns"`
	// Ranges are in-store EAN-13 number ranges printed on member cards.
	Ranges []CardRange `yaml:"ranges"`
}

// CardPattern is one member-number format.
type CardPattern struct {
	Name   string `yaml:"name"`   // for the installer's eyes
	Prefix string `yaml:"prefix"` // e.g. "M" or "990"
	Length int    `yaml:"length"` // total length with the prefix, 4..32; required
	Check  string `yaml:"check"`  // none (default), mod10 or luhn
}

// CardRange is an in-store EAN-13 range of member cards, inclusive. Both
// ends are 13 digits starting 20..29 with a valid check digit.
type CardRange struct {
	Name string `yaml:"name"`
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// InstorePrefix is a GS1 in-store EAN-13 label layout: Prefix, then
// ArticleDigits, an optional inner check digit, ValueDigits, and the EAN
// check digit: 13 digits in all.
type InstorePrefix struct {
	Prefix        string `yaml:"prefix"` // "20".."29" or longer, e.g. "210"
	Kind          string `yaml:"kind"`   // price (minor units) or weight (grams)
	ArticleDigits int    `yaml:"article_digits"`
	InnerCheck    bool   `yaml:"inner_check"`
	ValueDigits   int    `yaml:"value_digits"`
}

// API configures the local HTTP JSON API.
type API struct {
	// Listen is a TCP address; default 127.0.0.1:8080; empty string "off"
	// disables TCP. A non-loopback address needs a token.
	Listen string `yaml:"listen"`
	// Socket is an optional unix socket path.
	Socket string `yaml:"socket"`
	// Token is refused: a secret does not belong in a config file that
	// backups and support tickets carry; use TokenFile.
	Token string `yaml:"token"`
	// TokenFile holds the token (first line, at least 16 characters) that
	// lets callers presenting "Authorization: Bearer <token>" in from
	// anywhere the listener reaches.
	TokenFile string `yaml:"token_file"`
	// MetricsTokenFile holds a read-only token for GET /metrics (a
	// monitoring system), which opens nothing else.
	MetricsTokenFile string `yaml:"metrics_token_file"`
	// Hosts are further names the API answers to in the Host header,
	// besides localhost, 127.0.0.1 and ::1 (DNS rebinding protection),
	// e.g. the register's name on the store network.
	Hosts []string `yaml:"hosts"`
	// ReadTimeout bounds reading one request (headers and body); default
	// 30s, 1s..10m. The kiosk's event stream only writes and is not cut.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// MaxBody is the largest request body in bytes; default 65536,
	// 1024..16777216.
	MaxBody int64 `yaml:"max_body"`
	// TLSCertFile and TLSKeyFile (PEM; both or neither) make the TCP
	// listener speak HTTPS only (TLS 1.2 or later), for an API reached
	// over the store network. Read at start: restart to rotate. The unix
	// socket stays plain.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// Kiosk configures the customer kiosk page served by the API listener.
type Kiosk struct {
	Enabled  bool   `yaml:"enabled"`  // default false
	Language string `yaml:"language"` // default register.language
	// Currency is shown after amounts on the kiosk page ("₪", "лв",
	// "EUR"); default none. Decimals follow rules.unit.
	Currency string `yaml:"currency"`
}

// Checkout configures the checkout's timeouts and the customer display.
type Checkout struct {
	// AbandonAfter cancels a basket with no activity for this long;
	// default 10m, 10s..24h.
	AbandonAfter time.Duration `yaml:"abandon_after"`
	// ReceiptFor is how long the receipt (and a "my points" look-up) stays
	// on the display; default 30s, 1s..10m.
	ReceiptFor time.Duration `yaml:"receipt_for"`
	// PromptEvery is how long the display shows the member's balance, then
	// the cashier/customer prompt, in turn; default 3s, 1s..1m.
	PromptEvery time.Duration `yaml:"prompt_every"`
	// CardFirstFor keeps a member card shown before the first item (at
	// idle, or on the previous sale's receipt) for the basket that
	// follows within this long; default 2m, 0s..30m (0s: never).
	CardFirstFor time.Duration `yaml:"card_first_for"`
}

// Sync configures the link to head office.
type Sync struct {
	Enabled bool `yaml:"enabled"` // default false
	// Broker is the MQTT URL: tcp://, ssl://, tls://, mqtt://, mqtts://,
	// ws:// or wss://; required when enabled.
	Broker       string `yaml:"broker"`
	ClientID     string `yaml:"client_id"` // default register.id
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"` // a file holding the password
	CAFile       string `yaml:"ca_file"`
	CertFile     string `yaml:"cert_file"` // client certificate; with key_file
	KeyFile      string `yaml:"key_file"`
	// Window is the most messages in flight; default 32, 1..1000.
	Window int `yaml:"window"`
	// KeepAlive is the MQTT keepalive; default 30s, 1s..10m.
	KeepAlive time.Duration `yaml:"keepalive"`
	// ReconnectMax caps the wait between two connection attempts: the
	// wait doubles from 200ms per failed attempt up to this cap, each one
	// drawn at random below it (full jitter), so registers that lost the
	// broker together do not return together; default 5s, 1s..10m.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// StatusInterval is how often the retained status (and with it the
	// register's position in its store's member-summary stream, which
	// head office checks after being restored from a backup) is
	// refreshed while connected; default 30s, 1s..10m.
	StatusInterval time.Duration `yaml:"status_interval"`
	// LookupTimeout is how long the till waits for head office's answer
	// about a card this register does not know; default 1500ms,
	// 100ms..10s. Without an answer in time the card is "not known".
	LookupTimeout time.Duration `yaml:"lookup_timeout"`
	// TopicRoot is the versioned topic root. Deprecated: it is fixed by
	// the protocol version (loyalty/v1); any other value is refused.
	TopicRoot string `yaml:"topic_root"`
	// NoAckFaultAfter is how long the link may be up with events sent
	// and nothing acknowledged before status and display say why that
	// may be (certificate identity, ACL, head office down); default 5m,
	// 10s..24h.
	NoAckFaultAfter time.Duration `yaml:"no_ack_fault_after"`
	// AckTimeout: with events sent and head office's watermark still for
	// this long, the register resends one batch from the watermark and
	// waits for head office's answer before sending more (the wait
	// doubles on each silent round, up to 16x). It is how soon a register
	// resends what head office missed, e.g. after a broker restart; too
	// short, and registers resend while a busy head office is only slow
	// (duplicates that lengthen a backlog, docs/hq.md). Default 10s,
	// 1s..5m.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// Store is the store id in topics; default register.store_id.
	Store string `yaml:"store"`
	// HQKeys are head office's public signing keys ("ed25519:<base64>",
	// from `loyalty-hq keys generate`); config documents and member
	// summaries not signed by one of them are refused. One key, or two
	// during a rotation (docs/hq.md). Required when enabled.
	HQKeys []string `yaml:"hq_keys"`
	// Insecure allows a password over plain tcp:// (or ws://, mqtt://) to
	// a broker that is not on this machine; default false.
	Insecure bool `yaml:"insecure"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}
