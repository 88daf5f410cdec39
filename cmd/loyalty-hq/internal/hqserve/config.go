package hqserve

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/loyalty-terminal/loyalty/cmd/internal/yamlkeys"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// ErrConfig reports an invalid config file; the message names the file,
// the key and what is allowed.
var ErrConfig = errors.New("hqserve: invalid config")

// Config is loyalty-hq's configuration (configs/loyalty-hq.example.yaml).
type Config struct {
	// Store is the path of head office's bbolt file (a shop: one
	// process); default /var/lib/loyalty/hq.db. Not with postgres.
	Store string `yaml:"store"`
	// Postgres keeps the store in PostgreSQL instead (a chain: several
	// loyalty-hq workers on one database); chosen by postgres.dsn_file.
	Postgres Postgres `yaml:"postgres"`
	Broker   Broker   `yaml:"broker"`
	// Filters are the events subscriptions; default
	// [loyalty/v1/+/+/events] (every register). See docs/hq.md before
	// running several instances.
	Filters []string `yaml:"filters"`
	// MaxBatch is the most events per store transaction; default 8192.
	MaxBatch int `yaml:"max_batch"`
	// MaxQueuedBytes bounds the bytes of the messages waiting between
	// the broker and the store; when full, head office holds the broker
	// back (nothing is dropped). Default 256 MiB.
	MaxQueuedBytes int64 `yaml:"max_queued_bytes"`
	// OfflineRedeemLimit is the registers' offline redemption limit in
	// points, used to flag double spends beyond it; default 1000.
	OfflineRedeemLimit *int64 `yaml:"offline_redeem_limit"`
	// SummaryInterval is the least time between rounds of member
	// summaries; default 500ms; "-1s" disables summaries.
	SummaryInterval time.Duration `yaml:"summary_interval"`
	// SummaryMonths: a member's summary goes only to the stores where the
	// member enrolled or bought within this many months; default 12; 0
	// means every store the member ever shopped at.
	SummaryMonths *int `yaml:"summary_months"`
	// StatusAddr serves GET /status, /members/{id}, /doublespends,
	// /conflicts and /configs (JSON) on this address; default
	// 127.0.0.1:8090; "off" disables it.
	StatusAddr string `yaml:"status_addr"`
	// StatusTokenFile holds the bearer token (first line, 16+ characters)
	// callers other than this machine must send to the status page; it
	// is required when status_addr is not a loopback address.
	StatusTokenFile string `yaml:"status_token_file"`
	// StatusLogEvery logs a status line this often; default 30s.
	StatusLogEvery time.Duration `yaml:"status_log_every"`
	Log            Log           `yaml:"log"`
	// SigningKeyFile is head office's Ed25519 private key (PKCS#8 PEM,
	// mode 0600, from `loyalty-hq keys generate`); it signs member
	// summaries and config documents. Required.
	SigningKeyFile string `yaml:"signing_key_file"`
	// PreviousKey is the public key used before a rotation
	// ("ed25519:..."); retained config documents it signed are still
	// recognised while registers move to the new key. Optional.
	PreviousKey string `yaml:"previous_key"`
	// Policy is what head office checks in every event before applying
	// it (docs/hq.md "Policy").
	Policy Policy `yaml:"policy"`
	// FleetSilence is how long a register may say it is online with
	// events pending while head office's watermark for it does not move
	// before the fleet page says why that may be; default 5m.
	FleetSilence time.Duration `yaml:"fleet_silence"`
}

// Policy configures head office's checks of register events
// (sync/hq/policy).
type Policy struct {
	// AdjustMaxPerEvent caps one adjustment (absolute points); default
	// 10000; -1 holds every adjustment for review.
	AdjustMaxPerEvent int64 `yaml:"adjust_max_per_event"`
	// AdjustMaxPerDay caps the sum of one register's adjustments on one
	// day (absolute points); default 50000; -1 holds every adjustment.
	AdjustMaxPerDay int64 `yaml:"adjust_max_per_day"`
	// BirthdayBonusPerYear is how many birthday bonuses a member is
	// credited chain-wide for one birthday; default 1; -1 holds every
	// birthday bonus for review.
	BirthdayBonusPerYear int `yaml:"birthday_bonus_per_year"`
	// TimeZone is the IANA zone of head office's day; default UTC.
	TimeZone string `yaml:"timezone"`
	// RulesFiles are rule sets registers may run besides those head
	// office published (a register's own rules: section before the
	// first publish-config): YAML with a top-level rules: key.
	RulesFiles []string `yaml:"rules_files"`
}

// Broker says how to reach mosquitto.
type Broker struct {
	URL          string        `yaml:"url"`       // required: tcp://host:1883 or ssl://host:8883
	ClientID     string        `yaml:"client_id"` // default loyalty-hq
	Username     string        `yaml:"username"`
	PasswordFile string        `yaml:"password_file"` // file holding the password (first line)
	CAFile       string        `yaml:"ca_file"`       // CA that signed the broker's certificate
	CertFile     string        `yaml:"cert_file"`     // client certificate (mutual TLS)
	KeyFile      string        `yaml:"key_file"`
	WaitTimeout  time.Duration `yaml:"wait_timeout"` // default 10s
	// Insecure allows a password over plain tcp:// to a broker that is
	// not on this machine; default false.
	Insecure bool `yaml:"insecure"`
}

// Postgres says how to reach head office's PostgreSQL database.
type Postgres struct {
	// DSNFile holds the connection string (first line), e.g.
	// postgres://loyalty_hq:PASSWORD@db.example:5432/loyalty?sslmode=verify-full;
	// keep it mode 0600: it holds the password.
	DSNFile string `yaml:"dsn_file"`
	// MaxConns bounds this worker's connections; default 8.
	MaxConns int `yaml:"max_conns"`
	// Group is the workers' shared subscription group
	// ($share/<group>/...); default loyalty-hq.
	Group string `yaml:"group"`
}

// Log chooses the log handler.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// Load reads and validates a config file.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return Parse(path, data)
}

// Parse validates a config document; name is used in messages.
func Parse(name string, data []byte) (Config, error) {
	var c Config
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	if unknown := yamlkeys.Find(&root, reflect.TypeFor[Config]()); len(unknown) > 0 {
		u := unknown[0]
		return Config{}, fmt.Errorf("%w: %s:%d: %s: unknown key %q; allowed keys: %s", ErrConfig, name, u.Line, u.Path, u.Key, strings.Join(u.Allowed, ", "))
	}
	if err := root.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s: %s", ErrConfig, name, key, fmt.Sprintf(format, args...))
	}
	if c.Postgres.DSNFile != "" {
		switch {
		case c.Store != "":
			return Config{}, bad("store", "a bbolt file and postgres.dsn_file: choose one backend (a shop: store; a chain: postgres)")
		case c.Postgres.MaxConns < 0:
			return Config{}, bad("postgres.max_conns", "must be positive (default 8)")
		case strings.ContainsAny(c.Postgres.Group, "/+#"):
			return Config{}, bad("postgres.group", "%q: a shared subscription group has no '/', '+' or '#'", c.Postgres.Group)
		}
		if c.Postgres.Group == "" {
			c.Postgres.Group = "loyalty-hq"
		}
	} else if c.Postgres != (Postgres{}) {
		return Config{}, bad("postgres.dsn_file", "required when postgres is configured")
	} else if c.Store == "" {
		c.Store = "/var/lib/loyalty/hq.db"
	}
	switch {
	case c.Broker.URL == "":
		return Config{}, bad("broker.url", "required, e.g. ssl://broker.example:8883")
	case !strings.HasPrefix(c.Broker.URL, "tcp://") && !strings.HasPrefix(c.Broker.URL, "ssl://"):
		return Config{}, bad("broker.url", "%q must start with tcp:// or ssl://", c.Broker.URL)
	case (c.Broker.CertFile == "") != (c.Broker.KeyFile == ""):
		return Config{}, bad("broker.cert_file", "cert_file and key_file go together")
	case c.MaxQueuedBytes < 0:
		return Config{}, bad("max_queued_bytes", "must be positive (default 268435456, 256 MiB)")
	case c.MaxBatch < 0:
		return Config{}, bad("max_batch", "must be positive (default 8192)")
	case c.OfflineRedeemLimit != nil && *c.OfflineRedeemLimit < 0:
		return Config{}, bad("offline_redeem_limit", "must be 0 or more points")
	case c.SummaryMonths != nil && (*c.SummaryMonths < 0 || *c.SummaryMonths > 120):
		return Config{}, bad("summary_months", "must be 0 (every store the member ever shopped at) to 120 months")
	case c.Broker.WaitTimeout < 0:
		return Config{}, bad("broker.wait_timeout", "must be positive")
	case strings.HasPrefix(c.Broker.URL, "tcp://") && c.Broker.PasswordFile != "" && !loopbackURL(c.Broker.URL) && !c.Broker.Insecure:
		return Config{}, bad("broker.url", "%q sends the password in plain text to another machine; use ssl:// (or broker.insecure: true on a trusted network)", c.Broker.URL)
	case c.StatusAddr != "" && c.StatusAddr != "off" && !loopbackAddr(c.StatusAddr) && c.StatusTokenFile == "":
		return Config{}, bad("status_addr", "%q is reachable from other machines; set status_token_file (a file holding a token of 16+ characters) or listen on 127.0.0.1", c.StatusAddr)
	case c.SigningKeyFile == "":
		return Config{}, bad("signing_key_file", "required: head office's signing key (loyalty-hq keys generate -out FILE)")
	}
	for i, f := range c.Filters {
		if err := checkFilter(f); err != nil {
			return Config{}, bad(fmt.Sprintf("filters[%d]", i), "%v", err)
		}
	}
	if c.PreviousKey != "" {
		if _, err := signing.ParsePublicKey(c.PreviousKey); err != nil {
			return Config{}, bad("previous_key", "%v", err)
		}
	}
	if c.Policy.AdjustMaxPerEvent < -1 {
		return Config{}, bad("policy.adjust_max_per_event", "%d: points (0 = default 10000, -1 = hold every adjustment for review)", c.Policy.AdjustMaxPerEvent)
	}
	if c.Policy.AdjustMaxPerDay < -1 {
		return Config{}, bad("policy.adjust_max_per_day", "%d: points (0 = default 50000, -1 = hold every adjustment for review)", c.Policy.AdjustMaxPerDay)
	}
	if c.Policy.BirthdayBonusPerYear < -1 {
		return Config{}, bad("policy.birthday_bonus_per_year", "%d: bonuses (0 = default 1, -1 = hold every birthday bonus for review)", c.Policy.BirthdayBonusPerYear)
	}
	if c.Policy.TimeZone != "" {
		if _, err := time.LoadLocation(c.Policy.TimeZone); err != nil || c.Policy.TimeZone == "Local" {
			return Config{}, bad("policy.timezone", "%q: use an IANA name such as Europe/Sofia", c.Policy.TimeZone)
		}
	}
	for i, f := range c.Policy.RulesFiles {
		b, err := os.ReadFile(f)
		if err == nil {
			_, err = hq.ReadRuleSet(b)
		}
		if err != nil {
			return Config{}, bad(fmt.Sprintf("policy.rules_files[%d]", i), "%v", err)
		}
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return Config{}, bad("log.level", "%q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		return Config{}, bad("log.format", "%q: use text or json", c.Log.Format)
	}
	if c.StatusAddr == "" {
		c.StatusAddr = "127.0.0.1:8090"
	}
	if c.FleetSilence <= 0 {
		c.FleetSilence = DefaultFleetSilence
	}
	if c.StatusLogEvery <= 0 {
		c.StatusLogEvery = 30 * time.Second
	}
	if c.OfflineRedeemLimit == nil {
		v := int64(1000)
		c.OfflineRedeemLimit = &v
	}
	return c, nil
}

// NewPolicy builds head office's policy from the policy section: its
// limits and the rule sets of rules_files.
func (c Config) NewPolicy() (*policy.Policy, error) {
	loc := time.UTC
	if c.Policy.TimeZone != "" {
		l, err := time.LoadLocation(c.Policy.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("%w: policy.timezone: %v", ErrConfig, err)
		}
		loc = l
	}
	p := policy.New(policy.Limits{AdjustPerEvent: c.Policy.AdjustMaxPerEvent, AdjustPerDay: c.Policy.AdjustMaxPerDay, Location: loc,
		BirthdayPerYear: c.Policy.BirthdayBonusPerYear}, nil)
	for _, f := range c.Policy.RulesFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: policy.rules_files: %v", ErrConfig, err)
		}
		rs, err := hq.ReadRuleSet(b)
		if err == nil {
			err = p.AddRuleSet(rs)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: policy.rules_files: %s: %w", ErrConfig, f, err)
		}
	}
	return p, nil
}

// Conn builds the broker connection settings, reading the password and
// TLS files.
func (c Config) Conn() (hq.Conn, error) {
	conn := hq.Conn{Broker: c.Broker.URL, ClientID: c.Broker.ClientID, Username: c.Broker.Username, WaitTimeout: c.Broker.WaitTimeout}
	if c.Broker.PasswordFile != "" {
		b, err := os.ReadFile(c.Broker.PasswordFile)
		if err != nil {
			return conn, fmt.Errorf("%w: broker.password_file: %v", ErrConfig, err)
		}
		conn.Password = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	}
	if c.Broker.CAFile == "" && c.Broker.CertFile == "" {
		return conn, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.Broker.CAFile != "" {
		pem, err := os.ReadFile(c.Broker.CAFile)
		if err != nil {
			return conn, fmt.Errorf("%w: broker.ca_file: %v", ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return conn, fmt.Errorf("%w: broker.ca_file %s: no PEM certificate in it", ErrConfig, c.Broker.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.Broker.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.Broker.CertFile, c.Broker.KeyFile)
		if err != nil {
			return conn, fmt.Errorf("%w: broker.cert_file/key_file: %v", ErrConfig, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	conn.TLS = tc
	return conn, nil
}

// DSN reads the PostgreSQL connection string from postgres.dsn_file.
func (c Config) DSN() (string, error) {
	b, err := os.ReadFile(c.Postgres.DSNFile)
	if err != nil {
		return "", fmt.Errorf("%w: postgres.dsn_file: %v", ErrConfig, err)
	}
	dsn := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	if dsn == "" {
		return "", fmt.Errorf("%w: postgres.dsn_file %s is empty", ErrConfig, c.Postgres.DSNFile)
	}
	return dsn, nil
}

// offlineLimit returns the configured limit as points.
func (c Config) offlineLimit() ledger.Points { return ledger.Points(*c.OfflineRedeemLimit) }

// summaryMonths is hq.Options.SummaryMonths: 12 by default, negative for
// "ever" (0 there means the default).
func (c Config) summaryMonths() int {
	switch {
	case c.SummaryMonths == nil:
		return 12
	case *c.SummaryMonths == 0:
		return -1
	}
	return *c.SummaryMonths
}

// Keys loads the signing key and the keyring that verifies head office's
// own documents (the signing key's public key and PreviousKey).
func (c Config) Keys() (*signing.Signer, *signing.Keyring, error) {
	signer, err := signing.LoadSigner(c.SigningKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signing_key_file: %w", ErrConfig, err)
	}
	keys := []signing.PublicKey{signer.Public()}
	if c.PreviousKey != "" {
		prev, err := signing.ParsePublicKey(c.PreviousKey)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: previous_key: %w", ErrConfig, err)
		}
		if prev.ID() != signer.Public().ID() {
			keys = append(keys, prev)
		}
	}
	ring, err := signing.NewKeyring(keys...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return signer, ring, nil
}
