package compat_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// release is one build of the two binaries a fleet runs.
type release struct {
	name, loyaltyd, hq string
}

// builds builds the previous release (testdata/previous-release, in a
// temporary git worktree) and this one, each binary once, in parallel.
func builds(t *testing.T) (prev, cur release) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		testkit.Missing(t, "git", "the compatibility tests build the previous release from a git worktree")
	}
	root := strings.TrimSpace(run(t, "", "git", "rev-parse", "--show-toplevel"))
	b, err := os.ReadFile(filepath.Join(root, "testdata", "previous-release"))
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(string(b))
	if !hasCommit(root, commit) {
		// A shallow or partial clone: ask the remote for it.
		fetch := exec.Command("git", "fetch", "--quiet", "origin", commit)
		fetch.Dir = root
		out, ferr := fetch.CombinedOutput()
		if !hasCommit(root, commit) {
			why := fmt.Sprintf("the previous release %s (testdata/previous-release) is not in this clone and git fetch failed: %v %s", commit, ferr, bytes.TrimSpace(out))
			if testkit.CI() {
				t.Fatal(why)
			}
			t.Skip(why)
		}
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	run(t, root, "git", "worktree", "add", "--detach", "--quiet", src, commit)
	t.Cleanup(func() {
		c := exec.Command("git", "worktree", "remove", "--force", src)
		c.Dir = root
		if out, err := c.CombinedOutput(); err != nil {
			t.Logf("git worktree remove: %v %s", err, out)
		}
	})
	prev = release{"previous " + commit[:12], filepath.Join(tmp, "prev", "loyaltyd"), filepath.Join(tmp, "prev", "loyalty-hq")}
	cur = release{"current", filepath.Join(tmp, "cur", "loyaltyd"), filepath.Join(tmp, "cur", "loyalty-hq")}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	build := func(i int, dir, out string) {
		defer wg.Done()
		c := exec.Command("go", "build", "-trimpath", "-o", out+"/", "./cmd/loyaltyd", "./cmd/loyalty-hq")
		c.Dir = dir
		c.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if o, err := c.CombinedOutput(); err != nil {
			errs[i] = fmt.Errorf("build in %s: %v\n%s", dir, err, o)
		}
	}
	wg.Add(2)
	go build(0, src, filepath.Dir(prev.loyaltyd))
	go build(1, root, filepath.Dir(cur.loyaltyd))
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return prev, cur
}

func hasCommit(dir, commit string) bool {
	c := exec.Command("git", "cat-file", "-e", commit+"^{commit}")
	c.Dir = dir
	return c.Run() == nil
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	c := exec.Command(name, args...)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// proc is one running binary.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	log    *lockedBuf
	exited chan struct{}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), log: &lockedBuf{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.stop)
	return p
}

// stop ends the process with SIGTERM (SIGKILL after 15s) and waits.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// getJSON GETs url and decodes the answer into v; false when not 200.
func getJSON(url string, v any) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return false
	}
	return json.NewDecoder(resp.Body).Decode(v) == nil
}

// waitListening waits, as waitFor, for a freshly started binary to be up;
// it says whether the binary exited because its port was taken (only when
// retry is set: else that fails the test).
func (p *proc) waitListening(what string, retry bool, cond func() bool) (taken bool) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		select {
		case <-p.exited:
			if retry && testkit.PortTaken(p.log.String()) {
				return true
			}
			p.t.Fatalf("%s exited while waiting for %s\n%s", p.name, what, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %s never happened\n%s", p.name, what, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (p *proc) waitFor(what string, cond func() bool, more ...func() string) {
	p.t.Helper()
	extra := func() string {
		out := ""
		for _, f := range more {
			out += "\n" + f()
		}
		return out
	}
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		select {
		case <-p.exited:
			p.t.Fatalf("%s exited while waiting for %s\n%s", p.name, what, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %s never happened\n%s%s", p.name, what, p.log.String(), extra())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// headOffice is loyalty-hq serve of one release.
type headOffice struct {
	*proc
	dir, cfg, status, pub string
}

// registerRules is the rule set every register here runs (its own
// rules: section); this release's head office is told it
// (policy.rules_files), so its policy does not hold their sales.
const registerRules = `rules:
  version: 1
  unit: 100
  earn:
    points_per_unit: 1
  rounding: floor
  round_per: line
`

func newHeadOffice(t *testing.T, rel release, brokerURL string) *headOffice {
	t.Helper()
	h := &headOffice{dir: t.TempDir(), status: testkit.FreeAddr(t)}
	key := filepath.Join(h.dir, "signing.key")
	out := strings.Fields(run(t, "", rel.hq, "keys", "generate", "-out", key))
	h.pub = out[len(out)-1]
	h.cfg = filepath.Join(h.dir, "hq.yaml")
	doc := fmt.Sprintf("store: %s\nbroker:\n  url: %s\n  wait_timeout: 5s\nsigning_key_file: %s\nstatus_addr: %s\nlog:\n  level: debug\n",
		filepath.Join(h.dir, "hq.db"), brokerURL, key, h.status)
	if err := os.WriteFile(h.cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	h.proc = &proc{t: t}
	if rel.name == "current" {
		h.tellRules()
	}
	h.start(rel)
	return h
}

// tellRules tells this release's head office the registers' rule set
// (policy.rules_files, a setting the previous release does not have).
func (h *headOffice) tellRules() {
	h.t.Helper()
	rules := filepath.Join(h.dir, "register-rules.yaml")
	if err := os.WriteFile(rules, []byte(registerRules), 0o600); err != nil {
		h.t.Fatal(err)
	}
	f, err := os.OpenFile(h.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("policy:\n  rules_files: [\"" + rules + "\"]\n"); err != nil {
		h.t.Fatal(err)
	}
}

func (h *headOffice) start(rel release) {
	h.t.Helper()
	for try := 1; ; try++ {
		h.proc = start(h.t, rel.name+" loyalty-hq", rel.hq, "serve", "-config", h.cfg)
		if !h.waitListening("status page", try < testkit.PortTries, func() bool {
			var v any
			return getJSON("http://"+h.status+"/status", &v) && strings.Contains(h.log.String(), "http://"+h.status+"/status")
		}) {
			return
		}
		h.status = testkit.MoveAddr(h.t, h.cfg, h.status)
	}
}

// watermark is head office's watermark for a register.
func (h *headOffice) watermark(register string) uint64 {
	var doc struct {
		Registers []struct {
			Register  string `json:"register"`
			Watermark uint64 `json:"watermark"`
		} `json:"registers"`
	}
	if !getJSON("http://"+h.status+"/status", &doc) {
		return 0
	}
	for _, r := range doc.Registers {
		if r.Register == register {
			return r.Watermark
		}
	}
	return 0
}

func (h *headOffice) balance(member string) int64 {
	var doc struct {
		Balance int64 `json:"balance"`
	}
	getJSON("http://"+h.status+"/members/"+member, &doc)
	return doc.Balance
}

// register is loyaltyd of one release on its own ledger.
type register struct {
	*proc
	id, addr, cfg string
	sold          int
}

func newRegister(t *testing.T, id, brokerURL, hqKey string) *register {
	t.Helper()
	dir := t.TempDir()
	r := &register{id: id, addr: testkit.FreeAddr(t), cfg: filepath.Join(dir, "loyaltyd.yaml")}
	doc := fmt.Sprintf(`register:
  id: %s
  store_id: compat-store
  language: en
ledger:
  path: %s
%scatalogue:
  version: 1
  items:
    - sku: "4006381333931"
      name: Pen
      price: 250
api:
  listen: %s
sync:
  enabled: true
  broker: %s
  hq_keys: ["%s"]
log:
  level: debug
`, id, filepath.Join(dir, "ledger.db"), registerRules, r.addr, brokerURL, hqKey)
	if err := os.WriteFile(r.cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *register) start(t *testing.T, rel release) {
	t.Helper()
	for try := 1; ; try++ {
		r.proc = start(t, rel.name+" loyaltyd "+r.id, rel.loyaltyd, "-config", r.cfg)
		if !r.waitListening("healthz", try < testkit.PortTries, func() bool {
			resp, err := http.Get("http://" + r.addr + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200 && strings.Contains(r.log.String(), "loyaltyd ready")
		}) {
			return
		}
		r.addr = testkit.MoveAddr(t, r.cfg, r.addr)
	}
}

func (r *register) post(path string, body any) int {
	r.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+r.addr+path, "application/json", bytes.NewReader(b))
	if err != nil {
		r.t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		r.t.Fatalf("%s %s: %d %s", r.name, path, resp.StatusCode, msg)
	}
	return resp.StatusCode
}

func (r *register) enrol(member string) {
	r.post("/v1/members", map[string]any{"id": member, "name": "Member " + member, "aliases": []string{member}})
}

// sell records n sales of 10.00 to member, 10 points each.
func (r *register) sell(member string, n int) {
	for range n {
		r.sold++
		id := fmt.Sprintf("%s-sale-%d", r.id, r.sold)
		r.post("/v1/sales", map[string]any{"id": id, "member_id": member,
			"lines": []map[string]any{{"no": 1, "sku": "X-" + id, "quantity": 1, "unit_price": 1000}}})
	}
}

// ackError is the register's sync.ack_error: why it refused the last ack.
func (r *register) ackError() string {
	var st struct {
		Sync map[string]any `json:"sync"`
	}
	if !getJSON("http://"+r.addr+"/v1/status", &st) || st.Sync == nil {
		return ""
	}
	s, _ := st.Sync["ack_error"].(string)
	return s
}

// syncState is the register's sync status: online, pending events, the
// ledger's last sequence number and what head office confirmed.
func (r *register) syncState() (online bool, pending, lastSeq, confirmed float64) {
	var st struct {
		Sync   map[string]any `json:"sync"`
		Ledger map[string]any `json:"ledger"`
	}
	if !getJSON("http://"+r.addr+"/v1/status", &st) || st.Sync == nil || st.Ledger == nil {
		return false, -1, 0, 0
	}
	online, _ = st.Sync["online"].(bool)
	pending, _ = st.Sync["pending"].(float64)
	lastSeq, _ = st.Ledger["last_seq"].(float64)
	confirmed, _ = st.Ledger["confirmed"].(float64)
	return online, pending, lastSeq, confirmed
}

// drained waits until every event of the register is acknowledged and
// head office's watermark for it equals the register's, and checks the
// member's balance is the same on both sides.
func drained(t *testing.T, r *register, h *headOffice, member string, points int64) {
	t.Helper()
	var wm float64
	var last string
	r.waitFor("every event acknowledged by head office", func() bool {
		online, pending, seq, conf := r.syncState()
		wm = seq
		hw := h.watermark(r.id)
		last = fmt.Sprintf("register online=%v pending=%v last_seq=%v confirmed=%v; head office watermark %d", online, pending, seq, conf, hw)
		return online && pending == 0 && seq > 0 && conf == seq && hw == uint64(seq)
	}, func() string { return last + "\n" + h.name + ":\n" + h.log.String() })
	h.waitFor(member+"'s balance at head office", func() bool { return h.balance(member) == points })
	t.Logf("%s: %d sales, watermark %v at both ends, %s has %d points at head office", r.name, r.sold, wm, member, points)
}

// TestPreviousRegistersWithThisHeadOffice: head office is upgraded first
// (docs/protocol.md "Upgrade order"). Registers of the previous release
// sell against this release's head office; then one of them is upgraded
// in place (same ledger) and sells on. Every event arrives once and the
// balances agree.
func TestPreviousRegistersWithThisHeadOffice(t *testing.T) {
	prev, cur := builds(t)
	t.Run("old registers, new head office", func(t *testing.T) {
		t.Parallel()
		b := mosquittotest.Start(t, nil)
		h := newHeadOffice(t, cur, b.URL())
		r1 := newRegister(t, "r1", b.URL(), h.pub)
		r2 := newRegister(t, "r2", b.URL(), h.pub)
		r1.start(t, prev)
		r2.start(t, prev)
		r1.enrol("m1")
		r2.enrol("m2")
		r1.sell("m1", 10)
		r2.sell("m2", 10)
		drained(t, r1, h, "m1", 100)
		// Upgrade r1 in place, selling on while r2 (old) keeps selling.
		r1.stop()
		r2.sell("m2", 5)
		r1.start(t, cur)
		r1.sell("m1", 10)
		r2.sell("m2", 5)
		drained(t, r1, h, "m1", 200)
		drained(t, r2, h, "m2", 200)
	})
	t.Run("new register, old head office", func(t *testing.T) {
		// A register of this release forgets events only on a signed ack
		// (docs/protocol.md "Acks"), and the previous head office's are
		// bare: the register keeps everything and says why; once head
		// office is upgraded it drains, nothing lost or counted twice.
		t.Parallel()
		b := mosquittotest.Start(t, nil)
		h := newHeadOffice(t, prev, b.URL())
		r3 := newRegister(t, "r3", b.URL(), h.pub)
		r3.start(t, cur)
		r3.enrol("m3")
		r3.sell("m3", 10)
		h.waitFor("the old head office applied r3's events", func() bool { return h.balance("m3") == 100 })
		var why string
		r3.waitFor("r3 refuses the old head office's unsigned acks", func() bool {
			why = r3.ackError()
			return strings.Contains(why, "not signed")
		}, func() string { return r3.log.String() })
		if _, pending, seq, conf := r3.syncState(); pending != seq || conf != 0 {
			t.Fatalf("r3 forgot events on the old head office's unsigned acks: pending %v of %v, confirmed %v (%s)", pending, seq, conf, why)
		}
		// Head office upgraded: its signed acks confirm everything kept.
		h.stop()
		r3.sell("m3", 5)
		h.tellRules()
		h.start(cur)
		r3.sell("m3", 5)
		drained(t, r3, h, "m3", 200)
	})
}
