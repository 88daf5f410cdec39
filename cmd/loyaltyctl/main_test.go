package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
)

func runCtl(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// TestHelpForEveryCommand: -h (and --help) on every command prints that
// command's usage on stdout and exits 0, without doing anything (no daemon
// is running here, so a command that ran would fail).
func TestHelpForEveryCommand(t *testing.T) {
	t.Setenv("LOYALTY_API", "http://127.0.0.1:1") // nothing listens there
	for _, c := range commands() {
		for _, h := range []string{"-h", "--help"} {
			args := append(strings.Fields(c.name), h)
			code, out, errOut := runCtl(args...)
			if code != 0 || !strings.Contains(out, "usage: loyaltyctl "+c.name) {
				t.Errorf("loyaltyctl %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
		}
	}
	// help after other arguments and flags too
	if code, out, _ := runCtl("member", "lookup", "+3598", "-h"); code != 0 || !strings.Contains(out, "member lookup ALIAS") {
		t.Errorf("member lookup X -h: %d %q", code, out)
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"member", "-h"}, {"help", "refund"}} {
		code, out, errOut := runCtl(args...)
		if code != 0 || !strings.Contains(out, "usage:") {
			t.Errorf("loyaltyctl %v: exit %d, %q", args, code, out)
		}
		if errOut != "" { // loyaltyctl -h printed its usage twice, on stderr too
			t.Errorf("loyaltyctl %v: help also on stderr: %q", args, errOut)
		}
		if strings.Contains(out, "flag: help requested") {
			t.Errorf("loyaltyctl %v prints the flag package's error: %q", args, out)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Setenv("LOYALTY_API", "http://127.0.0.1:1")
	// a bad global flag or no command: the error and the usage once, on stderr
	for _, args := range [][]string{{"-bogus"}, {}} {
		code, out, errOut := runCtl(args...)
		if code != 2 || out != "" || strings.Count(errOut, "usage: loyaltyctl") != 1 {
			t.Errorf("loyaltyctl %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"member"}, "member needs a subcommand: consent, enrol, lookup"},
		{[]string{"member", "delete", "x"}, `unknown command "member delete"`},
		{[]string{"status", "extra"}, "status takes no arguments"},
		{[]string{"refund"}, "refund needs the SALE id"},
		{[]string{"refund", "s1", "-id", "r1", "one:two"}, "want LINE:QUANTITY"},
		{[]string{"sale", "-id", "x", "4006381333931:zero:250"}, "sku:quantity:unit_price"},
		{[]string{"scan", "-bogus", "1"}, "flag provided but not defined: -bogus"},
		{[]string{"member", "consent", "m1"}, "say -given or -withdraw"},
		{[]string{"sale", "4006381333931:1:250"}, "sale needs -id"},
		{[]string{"refund", "s1"}, "refund needs -id"},
		{[]string{"void", "s1", "-id", "v1"}, "void needs -id (the void's idempotency key) and -reason"},
		{[]string{"member", "enrol", "-name", "Ann"}, "member enrol needs -id"},
		{[]string{"export", "events", "-format", "xml"}, "-format must be csv or json"},
		{[]string{"backup"}, "backup needs -o FILE"},
	} {
		code, _, errOut := runCtl(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("loyaltyctl %v: exit %d, stderr %q, want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestGlobalFlagsAfterTheCommand: "loyaltyctl status -json" is
// "loyaltyctl -json status"; a flag the command has itself (ledger
// verify's -ledger) and what follows "--" stay the command's.
func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	for _, tc := range []struct {
		args, rest   []string
		json         bool
		ledger, addr string
	}{
		{[]string{"status", "-json"}, []string{"status"}, true, "", ""},
		{[]string{"status", "--json=false"}, []string{"status"}, false, "", ""},
		{[]string{"sale", "-id", "s1", "-addr", "http://127.0.0.1:9", "A:1:100", "-json"}, []string{"sale", "-id", "s1", "A:1:100"}, true, "", "http://127.0.0.1:9"},
		{[]string{"member", "lookup", "+3598", "-ledger=/tmp/l.db"}, []string{"member", "lookup", "+3598"}, false, "/tmp/l.db", ""},
		{[]string{"ledger", "verify", "-ledger", "/tmp/x.db"}, []string{"ledger", "verify", "-ledger", "/tmp/x.db"}, false, "", ""},
		{[]string{"sale", "-id", "s1", "--", "-json"}, []string{"sale", "-id", "s1", "--", "-json"}, false, "", ""},
		{[]string{"member", "lookup", "x", "-h"}, []string{"member", "lookup", "x", "-h"}, false, "", ""},
		// A value of the command's own flag that spells a global flag
		// is the command's (review15).
		{[]string{"void", "S1", "-id", "V1", "-reason", "-json"}, []string{"void", "S1", "-id", "V1", "-reason", "-json"}, false, "", ""},
		{[]string{"void", "S1", "-reason=x", "-json"}, []string{"void", "S1", "-reason=x"}, true, "", ""},
	} {
		gf := flag.NewFlagSet("t", flag.ContinueOnError)
		json := gf.Bool("json", false, "")
		ledgerPath := gf.String("ledger", "", "")
		addr := gf.String("addr", "", "")
		rest, err := hoistGlobals(gf, commands(), tc.args)
		if err != nil || !reflect.DeepEqual(rest, tc.rest) || *json != tc.json || *ledgerPath != tc.ledger || *addr != tc.addr {
			t.Errorf("%q: rest %q json %v ledger %q addr %q err %v; want %q %v %q %q", tc.args, rest, *json, *ledgerPath, *addr, err, tc.rest, tc.json, tc.ledger, tc.addr)
		}
	}
	gf := flag.NewFlagSet("t", flag.ContinueOnError)
	gf.String("addr", "", "")
	if _, err := hoistGlobals(gf, commands(), []string{"status", "-addr"}); err == nil || !strings.Contains(err.Error(), "-addr") {
		t.Errorf("a global flag without its value: %v", err)
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		pos     []string
		id, dev string
	}{
		{[]string{"s1", "-id", "r1", "1:1"}, []string{"s1", "1:1"}, "r1", ""},
		{[]string{"-id", "r1", "s1", "1:1"}, []string{"s1", "1:1"}, "r1", ""},
		{[]string{"s1", "1:1", "-id=r1"}, []string{"s1", "1:1"}, "r1", ""},
		{[]string{"CODE", "-device", "w1"}, []string{"CODE"}, "", "w1"},
		{[]string{"-id", "r1", "--", "-not-a-flag", "-device", "x"}, []string{"-not-a-flag", "-device", "x"}, "r1", ""},
		{nil, nil, "", ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		id := fs.String("id", "", "")
		dev := fs.String("device", "", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || !reflect.DeepEqual(pos, tc.pos) || *id != tc.id || *dev != tc.dev {
			t.Errorf("%q: pos %q id %q dev %q err %v; want %q %q %q", tc.args, pos, *id, *dev, err, tc.pos, tc.id, tc.dev)
		}
	}
}

func TestResolveTarget(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sock := write("api.sock", "") // stands in for the daemon's socket
	tokenFile := write("token", "s3cret-token-0123456789\n")
	full := write("full.yaml", "ledger:\n  path: /data/l.db\napi:\n  listen: 0.0.0.0:9090\n  token_file: "+tokenFile+"\nregister:\n  id: r1\n")
	withSock := write("sock.yaml", "api:\n  listen: 127.0.0.1:8081\n  socket: "+sock+"\n")
	goneSock := write("gone.yaml", "api:\n  listen: \"[::1]:8082\"\n  socket: "+filepath.Join(dir, "missing.sock")+"\n")
	broken := write("broken.yaml", "api: [unclosed\n")
	for _, tc := range []struct {
		name                  string
		cfg, addr, ledger     string
		wantAddr, wantSock    string
		wantToken, wantLedger string
		wantErr               string
		// wantFrom is in what loyaltyctl says about where the address came
		// from when the daemon is down: an -addr was said to come from the
		// config file.
		wantFrom string
	}{
		{name: "config gives all", cfg: full, wantAddr: "http://127.0.0.1:9090", wantToken: "s3cret-token-0123456789", wantLedger: "/data/l.db", wantFrom: "from " + full},
		{name: "flags win", cfg: full, addr: "http://127.0.0.1:1234", ledger: "/x.db", wantAddr: "http://127.0.0.1:1234", wantToken: "s3cret-token-0123456789", wantLedger: "/x.db", wantFrom: "from -addr (or LOYALTY_API)"},
		{name: "existing socket preferred", cfg: withSock, wantAddr: fallbackAddr, wantSock: sock, wantLedger: fallbackLedger},
		{name: "missing socket: tcp", cfg: goneSock, wantAddr: "http://[::1]:8082", wantLedger: fallbackLedger},
		{name: "named config missing", cfg: filepath.Join(dir, "nope.yaml"), wantErr: "nope.yaml"},
		{name: "broken config", cfg: broken, wantErr: "not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveTarget(tc.cfg, tc.addr, "", "", tc.ledger)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.addr != tc.wantAddr || got.socket != tc.wantSock || got.token != tc.wantToken || got.ledger != tc.wantLedger {
				t.Fatalf("got %+v, %v", got, err)
			}
			if d := got.describe(); !strings.Contains(d, tc.wantFrom) {
				t.Fatalf("describe() = %q, want %q", d, tc.wantFrom)
			}
		})
	}
}

// TestDefaultConfigIsMakeRuns: from the repository root (where `make run`
// runs), loyaltyctl finds the dev config and so the dev ledger and port.
func TestDefaultConfigIsMakeRuns(t *testing.T) {
	t.Chdir("../..")
	got, err := resolveTarget("", "", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/etc/loyalty/loyaltyd.yaml"); err == nil {
		t.Skip("an installed config takes precedence on this machine")
	}
	if got.config != "configs/loyaltyd.dev.yaml" || got.ledger != "var/ledger.db" || got.addr != "http://127.0.0.1:8080" {
		t.Fatalf("got %+v", got)
	}
}

// TestExportsArePrivate: what loyaltyctl writes (exports and backups hold
// members' personal data) is 0600, in folders it creates 0750, whatever
// the umask lets through.
func TestExportsArePrivate(t *testing.T) {
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "ledger.db")
	l, err := ledger.Open(ledgerPath, &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	t.Setenv("LOYALTY_API", "http://127.0.0.1:1") // no daemon: loyaltyctl reads the ledger itself
	for _, args := range [][]string{
		{"-ledger", ledgerPath, "-quiet", "export", "members", "-o", filepath.Join(dir, "new", "sub", "members.csv")},
		{"-ledger", ledgerPath, "-quiet", "export", "sales", "-format", "json", "-o", filepath.Join(dir, "sales.json")},
		{"-ledger", ledgerPath, "-quiet", "backup", "-o", filepath.Join(dir, "backups", "b.db")},
	} {
		if code, out, errOut := runCtl(args...); code != 0 {
			t.Fatalf("loyaltyctl %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	for path, want := range map[string]os.FileMode{
		"new": 0o750, "new/sub": 0o750, "new/sub/members.csv": 0o600, "sales.json": 0o600, "backups": 0o750, "backups/b.db": 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, path))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
}

// TestResolveTargetTLS: a daemon whose API speaks HTTPS (api.tls_cert_file)
// is called on https:// and its certificate is trusted.
func TestResolveTargetTLS(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "loyaltyd.yaml")
	if err := os.WriteFile(cfg, []byte("api: {listen: \"0.0.0.0:8443\", tls_cert_file: /etc/loyalty/api.crt, tls_key_file: /etc/loyalty/api.key}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := resolveTarget(cfg, "", "", "", "")
	if err != nil || got.addr != "https://127.0.0.1:8443" || got.caFile != "/etc/loyalty/api.crt" {
		t.Fatalf("target %+v, %v", got, err)
	}
}

// TestScanLine: what loyaltyctl scan prints for the answers of POST
// /v1/scan; an answer without a message (a cleared display) printed
// "<nil>".
func TestScanLine(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{"status": "accepted", "kind": "item", "message": "Stabilo pen / Total 2.50"}, "accepted (item): Stabilo pen / Total 2.50"},
		{map[string]any{"status": "accepted", "kind": "control"}, "accepted (control)"},
		{map[string]any{"status": "accepted"}, "accepted"},
		{map[string]any{"status": "sent", "message": "sent; the till has not answered yet"}, "sent: sent; the till has not answered yet"},
		{map[string]any{"status": "ignored", "kind": "member", "message": "not an input the checkout takes"}, "ignored: not an input the checkout takes"},
		{map[string]any{}, "answered"},
	} {
		if got := scanLine(tc.in); got != tc.want {
			t.Errorf("scanLine(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestOutputFileNotOverwritten: backup -o and export -o refuse a file that
// exists (exit 2, the file unchanged) unless -force; an export named like
// an earlier backup replaced the backup silently.
func TestOutputFileNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "ledger.db")
	l, err := ledger.Open(ledgerPath, &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	t.Setenv("LOYALTY_API", "http://127.0.0.1:1") // no daemon: loyaltyctl reads the ledger itself
	b1 := filepath.Join(dir, "b1.db")
	if code, out, errOut := runCtl("-ledger", ledgerPath, "-quiet", "backup", "-o", b1); code != 0 {
		t.Fatalf("first backup: exit %d\n%s%s", code, out, errOut)
	}
	before, err := os.ReadFile(b1)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-ledger", ledgerPath, "-quiet", "export", "sales", "-o", b1},
		{"-ledger", ledgerPath, "-quiet", "export", "members", "-format", "json", "-o", b1},
		{"-ledger", ledgerPath, "-quiet", "backup", "-o", b1},
	} {
		code, _, errOut := runCtl(args...)
		if code != 2 || !strings.Contains(errOut, "exists") || !strings.Contains(errOut, "-force") {
			t.Errorf("loyaltyctl %v: exit %d, stderr %q; want 2 and a word on -force", args, code, errOut)
		}
		if after, _ := os.ReadFile(b1); !bytes.Equal(after, before) {
			t.Fatalf("loyaltyctl %v changed %s", args, b1)
		}
	}
	for _, args := range [][]string{
		{"-ledger", ledgerPath, "-quiet", "backup", "-force", "-o", b1},
		{"-ledger", ledgerPath, "-quiet", "export", "sales", "-o", b1, "-force"},
	} {
		if code, out, errOut := runCtl(args...); code != 0 {
			t.Errorf("loyaltyctl %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if after, _ := os.ReadFile(b1); !strings.HasPrefix(string(after), "sale_id") {
		t.Errorf("export -force did not replace %s", b1)
	}
}

// TestMemberLine: what member lookup prints; an erased member (no name,
// no aliases, no consent) printed "aliases <nil>".
func TestMemberLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{`{"member":{"id":"m1","name":"Dana","tier":"base","aliases":["2990000000002","+972500000001"],"consent":{"given":true}},"balance":4}`, "m1  Dana  balance 4  tier base  consent true  aliases 2990000000002 +972500000001"},
		{`{"member":{"id":"m1","name":"","aliases":null,"consent":{"given":false}},"balance":0}`, "m1    balance 0  tier   consent false  aliases none"},
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(tc.in), &m); err != nil {
			t.Fatal(err)
		}
		if got := memberLine(m); got != tc.want || strings.Contains(got, "<nil>") {
			t.Errorf("memberLine(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestBackupShortDownload: a download shorter than the X-Ledger-Size
// loyaltyd announced (its copy broke off after it had begun answering)
// fails, and no file is left at -o.
func TestBackupShortDownload(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Ledger-Size", "8192")
		w.Header().Set("Content-Length", "4096")
		_, _ = w.Write(make([]byte, 4096))
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "b.db")
	code, _, errOut := runCtl("-addr", srv.URL, "-quiet", "backup", "-o", out)
	if code != 1 || !strings.Contains(errOut, "got 4096 of the 8192 bytes") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a short copy was left at -o: %v", err)
	}
}

// TestLedgerFlagWithDaemonRunning: export and backup go through a running
// loyaltyd, whose ledger they copy; a -ledger naming another file says
// so instead of passing in silence (outside15). version takes no
// arguments and prints JSON with -json.
func TestLedgerFlagWithDaemonRunning(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "sale_id\n")
	}))
	defer srv.Close()
	for _, args := range [][]string{
		{"-addr", srv.URL, "-ledger", "/nonexistent/x.db", "export", "sales", "-o", "OUT"},
		{"-addr", srv.URL, "export", "sales", "-ledger", "/nonexistent/x.db", "-o", "OUT"},
	} {
		out := filepath.Join(t.TempDir(), "s.csv")
		for i := range args {
			if args[i] == "OUT" {
				args[i] = out
			}
		}
		code, _, errOut := runCtl(args...)
		if code != 0 || !strings.Contains(errOut, "loyaltyd is running: export of its ledger; -ledger applies only when no daemon runs") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
	t.Setenv("LOYALTY_LEDGER", "")
	out := filepath.Join(t.TempDir(), "s.csv")
	if code, _, errOut := runCtl("-addr", srv.URL, "export", "sales", "-o", out); code != 0 || errOut != "" {
		t.Errorf("without -ledger: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runCtl("version", "extra"); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
	if code, out, _ := runCtl("-json", "version"); code != 0 || !strings.HasPrefix(out, `{"version":`) {
		t.Errorf("-json version: %d %q", code, out)
	}
}

// TestVerifyJSONKeys: ledger verify -json names its figures as status
// -json does (snake_case), not by Go's field names (outside15).
func TestVerifyJSONKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	l, err := ledger.Open(path, &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCtl("-json", "ledger", "verify", "-ledger", path)
	var res struct {
		OK    bool           `json:"ok"`
		Stats map[string]any `json:"stats"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || !res.OK {
		t.Fatalf("exit %d, %v, stdout %q, stderr %q", code, err, out, errOut)
	}
	for _, k := range []string{"sales", "members", "events", "outbox_pending", "last_seq", "file_size"} {
		if _, ok := res.Stats[k]; !ok {
			t.Errorf("stats lack %q: %v", k, res.Stats)
		}
	}
	if _, ok := res.Stats["OutboxPending"]; ok {
		t.Errorf("stats named by Go fields: %v", res.Stats)
	}
}
