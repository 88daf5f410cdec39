package hqserve_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqserve"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		doc     string
		wantErr string // substring naming the key; "" = valid
	}{
		{"minimal", "broker: {url: 'tcp://127.0.0.1:1883'}\n", ""},
		{"full", "store: /tmp/hq.db\nbroker: {url: 'ssl://b:8883', client_id: hq1, username: hq, ca_file: ca.pem}\nmax_batch: 500\noffline_redeem_limit: 0\nlog: {level: debug, format: json}\n", ""},
		{"no broker", "store: x\n", "broker.url"},
		{"bad scheme", "broker: {url: 'http://x'}\n", "broker.url"},
		{"cert without key", "broker: {url: 'ssl://x:1', cert_file: c.pem}\n", "broker.cert_file"},
		{"unknown key", "broker: {url: 'tcp://x:1'}\ncolour: red\n", `hq.yaml:2: colour: unknown key "colour"; allowed keys: store, postgres, broker, filters, max_batch, max_queued_bytes, offline_redeem_limit, summary_interval, summary_months, status_addr, status_token_file, status_log_every, log`},
		{"unknown nested key", "broker:\n  url: 'tcp://x:1'\n  pasword_file: p\n", `hq.yaml:3: broker.pasword_file: unknown key "pasword_file"; allowed keys: url, client_id, username, password_file,`},
		{"negative limit", "broker: {url: 'tcp://x:1'}\noffline_redeem_limit: -5\n", "offline_redeem_limit"},
		{"negative max_batch", "broker: {url: 'tcp://x:1'}\nmax_batch: -1\n", "max_batch: must be positive (default 8192)"}, // it said 1000, the example and docs/hq.md 8192 (sync/hq's default)
		{"summary months", "broker: {url: 'tcp://x:1'}\nsummary_months: 6\n", ""},
		{"summary months out of range", "broker: {url: 'tcp://x:1'}\nsummary_months: 121\n", "summary_months"},
		{"negative summary months", "broker: {url: 'tcp://x:1'}\nsummary_months: -1\n", "summary_months"},
		{"bad level", "broker: {url: 'tcp://x:1'}\nlog: {level: loud}\n", "log.level"},
		{"filter under another root", "broker: {url: 'tcp://x:1'}\nfilters: [loyalty/v2/+/+/events]\n", `filters[0]: "loyalty/v2/+/+/events" is not under loyalty/v1`},
		{"filter not events", "broker: {url: 'tcp://x:1'}\nfilters: [loyalty/v1/#]\n", `filters[0]: "loyalty/v1/#" is not an events filter`},
		{"shared filter", "broker: {url: 'tcp://x:1'}\nfilters: [$share/hq/loyalty/v1/+/+/events, loyalty/v1/s1/+/events]\n", ""},
		{"postgres and a store file", "store: /tmp/hq.db\npostgres: {dsn_file: /etc/loyalty/hq.dsn}\nbroker: {url: 'tcp://x:1'}\n", "store: a bbolt file and postgres.dsn_file: choose one"},
		{"postgres without dsn_file", "postgres: {max_conns: 4}\nbroker: {url: 'tcp://x:1'}\n", "postgres.dsn_file: required"},
		{"postgres group with slash", "postgres: {dsn_file: x, group: a/b}\nbroker: {url: 'tcp://x:1'}\n", "postgres.group"},
		{"bad previous key", "broker: {url: 'tcp://x:1'}\nprevious_key: ed25519:AAAA\n", "previous_key"},
		{"policy", "broker: {url: 'tcp://x:1'}\npolicy: {adjust_max_per_event: -1, adjust_max_per_day: 100, timezone: Europe/Sofia, rules_files: [../../../../configs/loyaltyd.dev.yaml]}\n", ""},
		{"policy cap", "broker: {url: 'tcp://x:1'}\npolicy: {adjust_max_per_day: -2}\n", "policy.adjust_max_per_day"},
		{"policy zone", "broker: {url: 'tcp://x:1'}\npolicy: {timezone: Mars/Olympus}\n", "policy.timezone"},
		{"policy rules file missing", "broker: {url: 'tcp://x:1'}\npolicy: {rules_files: [/nonexistent.yaml]}\n", "policy.rules_files[0]"},
		{"policy rules file without rules", "broker: {url: 'tcp://x:1'}\npolicy: {rules_files: [../../../../configs/loyalty-hq.example.yaml]}\n", "policy.rules_files[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := hqserve.Parse("hq.yaml", []byte(tc.doc+"signing_key_file: /etc/loyalty/hq-signing.key\n"))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Store == "" || c.StatusAddr == "" || c.OfflineRedeemLimit == nil {
					t.Fatalf("defaults not applied: %+v", c)
				}
				return
			}
			if !errors.Is(err, hqserve.ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "hq.yaml") {
				t.Fatalf("got %v, want ErrConfig naming hq.yaml and %q", err, tc.wantErr)
			}
		})
	}
}

// postgres.dsn_file chooses the PostgreSQL backend: no store file, the
// workers' group defaults, the connection string comes from the file.
func TestPostgresBackendChosen(t *testing.T) {
	dsnFile := filepath.Join(t.TempDir(), "hq.dsn")
	if err := os.WriteFile(dsnFile, []byte("postgres://hq:pw@db.example:5432/loyalty\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := hqserve.Parse("hq.yaml", []byte("postgres: {dsn_file: "+dsnFile+"}\nbroker: {url: 'tcp://127.0.0.1:1883'}\nsigning_key_file: k\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store != "" || c.Postgres.Group != "loyalty-hq" {
		t.Fatalf("store %q group %q", c.Store, c.Postgres.Group)
	}
	if dsn, err := c.DSN(); err != nil || dsn != "postgres://hq:pw@db.example:5432/loyalty" {
		t.Fatalf("dsn %q %v", dsn, err)
	}
}

func TestSigningKeyRequired(t *testing.T) {
	_, err := hqserve.Parse("hq.yaml", []byte("broker: {url: 'tcp://127.0.0.1:1883'}\n"))
	if !errors.Is(err, hqserve.ErrConfig) || !strings.Contains(err.Error(), "signing_key_file") || !strings.Contains(err.Error(), "keys generate") {
		t.Fatalf("got %v, want an error naming signing_key_file and how to make one", err)
	}
}

func TestExampleConfigParses(t *testing.T) {
	c, err := hqserve.Load("../../../../configs/loyalty-hq.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.URL == "" || c.MaxBatch != 8192 {
		t.Fatalf("example config: %+v", c)
	}
}

// TestLoadKeepsTheCause: a config file that cannot be read is ErrConfig and
// still says why (errors.Is finds the file system's error).
func TestLoadKeepsTheCause(t *testing.T) {
	_, err := hqserve.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, hqserve.ErrConfig) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want ErrConfig wrapping fs.ErrNotExist", err)
	}
}

// TestNewPolicy: the policy section becomes head office's policy, with
// the rule set of the register's dev config known.
func TestNewPolicy(t *testing.T) {
	c, err := hqserve.Parse("hq.yaml", []byte("broker: {url: 'tcp://x:1'}\nsigning_key_file: k\npolicy: {adjust_max_per_event: 7, rules_files: [../../../../configs/loyaltyd.dev.yaml]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.NewPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if l := p.Limits(); l.AdjustPerEvent != 7 || l.AdjustPerDay != 50000 {
		t.Fatalf("limits %+v", l)
	}
	if v := p.Versions(); len(v) != 1 || v[0] < 1 {
		t.Fatalf("rule set versions %v", v)
	}
}
