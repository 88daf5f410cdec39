package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// bins holds the real binaries, built once in TestMain.
var bins struct {
	dir, loyaltyd, loyaltyctl, hq string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "loyalty-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	bins.loyaltyd = filepath.Join(dir, "loyaltyd")
	bins.loyaltyctl = filepath.Join(dir, "loyaltyctl")
	bins.hq = filepath.Join(dir, "loyalty-hq")
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/loyalty-terminal/loyalty/cmd/loyaltyd", "github.com/loyalty-terminal/loyalty/cmd/loyaltyctl",
		"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuf collects what the daemon writes to the display pty.
type syncBuf struct {
	mu  sync.Mutex
	b   bytes.Buffer
	ch  chan struct{} // pinged on every read
	log []stamp
	// rate, when set, limits reading to that many bytes a second (a
	// 9600-baud display takes about 960).
	rate atomic.Int64
}

type stamp struct {
	at  time.Time
	end int // buffer length after the read
}

func (s *syncBuf) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// register is one loyaltyd under test with pty-backed devices the test
// holds: it writes scans to the scanner's master side and reads the
// display's master side.
type register struct {
	t         testing.TB
	dir       string
	cfgPath   string
	addr      string
	scanM     *os.File
	scanS     *os.File
	scan2M    *os.File // a second scanner, configured when second is set
	scan2S    *os.File
	second    bool
	dispM     *os.File
	dispS     *os.File
	disp      *syncBuf
	cmd       *exec.Cmd
	stderr    *bytes.Buffer
	exited    chan error
	extraCfg  string
	ledgerCfg string   // extra keys of ledger (each line indented 2)
	dispCfg   string   // extra keys of devices.display (each line indented 4)
	dispKind  string   // devices.display.kind; default cd5220
	env       []string // extra environment for loyaltyd
	args      []string // extra flags for loyaltyd
	rules     string   // replaces the config's rules block when set
	socket    string   // api.socket, when set
	regID     string   // register.id; default e2e-r1
	storeID   string   // register.store_id; default e2e-store
}

const memberCard = "M12345674" // prefix M + 8 digits, Luhn-valid

func newRegister(t testing.TB) *register {
	t.Helper()
	if !cardsafe.LuhnValid(strings.TrimPrefix(memberCard, "M")) {
		t.Fatal("test member card is not Luhn-valid")
	}
	r := &register{t: t, dir: t.TempDir(), disp: &syncBuf{ch: make(chan struct{}, 1)}}
	var err error
	if r.scanM, r.scanS, err = pty.Open(); err != nil {
		t.Fatal(err)
	}
	if r.scan2M, r.scan2S, err = pty.Open(); err != nil {
		t.Fatal(err)
	}
	if r.dispM, r.dispS, err = pty.Open(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			chunk := buf
			rate := r.disp.rate.Load()
			if rate > 0 {
				chunk = buf[:max(1, min(int64(len(buf)), rate/50))]
			}
			n, err := r.dispM.Read(chunk)
			if rate > 0 && n > 0 {
				time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
			}
			if n > 0 {
				r.disp.mu.Lock()
				r.disp.b.Write(buf[:n])
				r.disp.log = append(r.disp.log, stamp{at: time.Now(), end: r.disp.b.Len()})
				r.disp.mu.Unlock()
				select {
				case r.disp.ch <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		r.kill()
		r.scanM.Close()
		r.scanS.Close()
		r.scan2M.Close()
		r.scan2S.Close()
		r.dispM.Close()
		r.dispS.Close()
	})
	r.addr = testkit.FreeAddr(t)
	return r
}

func (r *register) writeConfig() {
	rulesBlock := `rules:
  version: 1
  unit: 100
  earn:
    points_per_unit: 1
  rounding: floor
  round_per: line
  rewards:
    - id: coffee
      name: Free coffee
      points: 10
      discount: 300
`
	if r.rules != "" {
		rulesBlock = r.rules
	}
	cfg := fmt.Sprintf(`register:
  id: %s
  store_id: %s
  language: en
ledger:
  path: %s
  lock_timeout: 2s
%s%scatalogue:
  version: 1
  items:
    - sku: "4006381333931"
      name: Stabilo pen
      price: 250
      category: stationery
    - sku: "9780201379624"
      name: Design Patterns
      price: 4999
      category: books
devices:
  scanners:
    - name: scanner1
      path: %s
      terminator: cr
%s  display:
    kind: %s
    path: %s
    width: 20
%smember_cards:
  patterns:
    - name: club card
      prefix: "M"
      length: 9
      check: luhn
control_codes:
  "*TOTAL*": complete
  "*CANCEL*": cancel
api:
  listen: %s
%skiosk:
  enabled: true
log:
  level: debug
%s`, firstNonEmpty(r.regID, "e2e-r1"), firstNonEmpty(r.storeID, "e2e-store"), filepath.Join(r.dir, "ledger.db"), r.ledgerCfg, rulesBlock, r.scanS.Name(), r.secondCfg(), firstNonEmpty(r.dispKind, "cd5220"), r.dispS.Name(), r.dispCfg, r.addr, socketCfg(r.socket), r.extraCfg)
	r.cfgPath = filepath.Join(r.dir, "loyaltyd.yaml")
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func socketCfg(p string) string {
	if p == "" {
		return ""
	}
	return "  socket: " + p + "\n"
}

// start runs loyaltyd and waits until /healthz answers and its log says
// it is ready (so the answer is its own); it returns the time from exec to
// ready. A port another process took before loyaltyd bound it is replaced
// (r.addr changes) and loyaltyd started again.
func (r *register) start() time.Duration {
	r.t.Helper()
	if r.cfgPath == "" {
		r.writeConfig()
	}
	for try := 1; ; try++ {
		d, taken := r.startOnce(try < testkit.PortTries)
		if !taken {
			return d
		}
		r.t.Logf("loyaltyd: port %s taken by another process; trying another", r.addr)
		r.addr = testkit.MoveAddr(r.t, r.cfgPath, r.addr)
	}
}

// startOnce is one try of start; taken says loyaltyd exited because its
// port was taken (only when retry is set: else that fails the test).
func (r *register) startOnce(retry bool) (d time.Duration, taken bool) {
	r.t.Helper()
	r.stderr = &bytes.Buffer{}
	r.cmd = exec.Command(bins.loyaltyd, append([]string{"-config", r.cfgPath}, r.args...)...)
	r.cmd.Dir = r.dir
	r.cmd.Env = append(os.Environ(), r.env...)
	r.cmd.Stdout = io.Discard
	r.cmd.Stderr = &lockedWriter{w: r.stderr}
	t0 := time.Now()
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(r.cmd, r.exited)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(r.logs(), "loyaltyd ready") {
				return time.Since(t0), false
			}
		}
		select {
		case err := <-r.exited:
			if retry && testkit.PortTaken(r.logs()) {
				r.cmd = nil
				return 0, true
			}
			r.t.Fatalf("loyaltyd exited before ready: %v\n%s", err, r.logs())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("loyaltyd not ready in time\n%s", r.logs())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (r *register) logs() string {
	if lw, ok := r.cmd.Stderr.(*lockedWriter); ok {
		lw.mu.Lock()
		defer lw.mu.Unlock()
	}
	return r.stderr.String()
}

// kill sends SIGKILL (no chance to clean up) and waits.
func (r *register) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
	}
	r.cmd = nil
}

// term sends SIGTERM and returns the exit error and how long it took.
func (r *register) term() (time.Duration, error) {
	t0 := time.Now()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.exited:
		r.cmd = nil
		return time.Since(t0), err
	case <-time.After(15 * time.Second):
		r.t.Fatalf("loyaltyd ignored SIGTERM\n%s", r.logs())
	}
	return 0, nil
}

func (r *register) secondCfg() string {
	if !r.second {
		return ""
	}
	return "    - name: scanner2\n      path: " + r.scan2S.Name() + "\n      terminator: cr\n"
}

// scan2 writes one frame to the second scanner's pty.
func (r *register) scan2(code string) time.Time {
	r.t.Helper()
	if _, err := r.scan2M.Write([]byte(code + "\r")); err != nil {
		r.t.Fatal(err)
	}
	return time.Now()
}

// scan writes one frame to the scanner pty, as a serial scanner would.
func (r *register) scan(code string) time.Time {
	r.t.Helper()
	if _, err := r.scanM.Write([]byte(code + "\r")); err != nil {
		r.t.Fatal(err)
	}
	return time.Now()
}

// api calls the daemon's API and decodes the JSON answer.
func (r *register) api(method, path string, body any) (int, map[string]any) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+r.addr+path, rd)
	if method != "GET" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// lowerLines returns every lower line (ESC Q B text CR) the display got.
func lowerLines(b []byte) []string { return cd5220Lines(b, 'B') }

// upperLines returns every upper line (ESC Q A text CR) the display got.
func upperLines(b []byte) []string { return cd5220Lines(b, 'A') }

// cd5220Lines returns, in order, the text of every CD5220 "write line"
// command (ESC Q <row> text CR) for the given row, trailing padding removed.
func cd5220Lines(b []byte, row byte) []string {
	var out []string
	cmd := []byte{0x1b, 'Q', row}
	for {
		i := bytes.Index(b, cmd)
		if i < 0 {
			return out
		}
		b = b[i+len(cmd):]
		j := bytes.IndexByte(b, '\r')
		if j < 0 {
			return out
		}
		out = append(out, strings.TrimRight(string(b[:j]), " "))
		b = b[j+1:]
	}
}

// waitDisplay waits until cond holds on the display bytes.
func (r *register) waitDisplay(what string, cond func([]byte) bool) {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if cond(r.disp.Bytes()) {
			return
		}
		select {
		case <-r.disp.ch:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("display never showed %s; lower lines %q\n%s", what, lowerLines(r.disp.Bytes()), r.logs())
		}
	}
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func ctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bins.loyaltyctl, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestStartMovesOffATakenPort: another process takes the port testkit.FreeAddr
// handed out, and answers /healthz there, before loyaltyd binds it. start
// must not take that stranger for loyaltyd, and starts it on another port.
func TestStartMovesOffATakenPort(t *testing.T) {
	r := newRegister(t)
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	stranger := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})}
	go func() { _ = stranger.Serve(ln) }()
	t.Cleanup(func() { stranger.Close() })
	taken := r.addr
	r.start()
	if r.addr == taken {
		t.Fatalf("start took the stranger on %s for loyaltyd", taken)
	}
	if code, out := r.api("GET", "/v1/status", nil); code != 200 || out["register"] == nil {
		t.Fatalf("loyaltyd on its new port %s: %d %v", r.addr, code, out)
	}
}
