package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/api"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

const token = "0123456789abcdef-test-token"

var rewards = []rules.Reward{{ID: "coffee", Name: "Free coffee", Points: 10, Discount: 300}}

type env struct {
	l   *ledger.Ledger
	srv *httptest.Server
	h   http.Handler
}

func setup(t testing.TB) *env {
	t.Helper()
	clk := ledgertest.NewClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), true)
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", Clock: clk, Engine: &ledgertest.Engine{Version: 1, Rewards: rewards}, OfflineRedeemLimit: 100})
	ctx := context.Background()
	if err := l.PutCatalogue(ctx, 1, []ledger.Item{{SKU: "4006381333931", Name: "Pen", Price: 250}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Enrol(ctx, ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"M00000017", "+972500000001"}}); err != nil {
		t.Fatal(err)
	}
	m := checkout.New(checkout.Options{Register: "r1", Catalog: l, Members: l, Recorder: l, Rewards: rewards})
	// example.com is httptest.NewRequest's Host.
	s := api.New(api.Options{Ledger: l, Checkout: checkout.NewDriver(m, nil), Token: token, MaxBody: 4096, Hosts: []string{"example.com"}})
	h := s.Handler(nil)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{l: l, srv: srv, h: h}
}

// call sends a request from remote (a non-loopback address) or from
// loopback, through the handler directly so the source address is ours.
func (e *env) call(t *testing.T, method, path, body, remote, auth string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remote
	if method != "GET" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var out map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: bad JSON %q", method, path, rec.Body.String())
		}
	}
	return rec.Code, out
}

const local = "127.0.0.1:5555"

func (e *env) stats(t testing.TB) ledger.Stats {
	t.Helper()
	st, err := e.l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	st.Commits, st.CommittedOps = 0, 0 // bookkeeping, not content
	return st
}

const sale1 = `{"id":"pos-1","member":"M00000017","lines":[{"no":1,"sku":"4006381333931","quantity":4,"unit_price":250}]}`

func TestSaleIdempotent(t *testing.T) {
	e := setup(t)
	code, out := e.call(t, "POST", "/v1/sales", sale1, local, "")
	if code != 201 || out["balance"].(float64) != 10 || out["replayed"] != false {
		t.Fatalf("first post: %d %v", code, out)
	}
	before := e.stats(t)
	code, out = e.call(t, "POST", "/v1/sales", sale1, local, "")
	if code != 200 || out["replayed"] != true || out["balance"].(float64) != 10 {
		t.Fatalf("second post: %d %v", code, out)
	}
	if after := e.stats(t); after != before {
		t.Fatalf("ledger changed by a replay: %+v -> %+v", before, after)
	}
	// same id, different content: a conflict, nothing recorded
	code, out = e.call(t, "POST", "/v1/sales", strings.Replace(sale1, `"quantity":4`, `"quantity":5`, 1), local, "")
	if code != 409 || out["code"] != "id_conflict" {
		t.Fatalf("conflict: %d %v", code, out)
	}
	if after := e.stats(t); after != before {
		t.Fatalf("ledger changed by a conflict: %+v -> %+v", before, after)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, method, path, body, remote, auth string
		status                                 int
		code                                   string
	}{
		{name: "malformed json", method: "POST", path: "/v1/sales", body: `{"id":`, remote: local, status: 400, code: "malformed_json"},
		{name: "unknown field", method: "POST", path: "/v1/sales", body: `{"id":"x","lines":[],"bogus":1}`, remote: local, status: 400, code: "malformed_json"},
		{name: "trailing data", method: "POST", path: "/v1/sales", body: sale1 + `{}`, remote: local, status: 400, code: "malformed_json"},
		{name: "too large", method: "POST", path: "/v1/sales", body: `{"id":"` + strings.Repeat("x", 5000) + `"}`, remote: local, status: 413, code: "body_too_large"},
		{name: "empty body", method: "POST", path: "/v1/sales", body: ``, remote: local, status: 400, code: "malformed_json"},
		{name: "missing id", method: "POST", path: "/v1/sales", body: `{"lines":[{"no":1,"sku":"a","quantity":1,"unit_price":1}]}`, remote: local, status: 400, code: "missing_id"},
		{name: "negative amount", method: "POST", path: "/v1/sales", body: `{"id":"n1","lines":[{"no":1,"sku":"a","quantity":1,"unit_price":-100}]}`, remote: local, status: 400, code: "invalid_input"},
		{name: "unknown card", method: "POST", path: "/v1/sales", body: `{"id":"u1","member":"M99","lines":[{"no":1,"sku":"a","quantity":1,"unit_price":100}]}`, remote: local, status: 404, code: "unknown_member"},
		{name: "redeem beyond balance", method: "POST", path: "/v1/sales", body: `{"id":"r1","member":"M00000017","lines":[{"no":1,"sku":"a","quantity":1,"unit_price":1000}],"redemptions":[{"reward_id":"coffee"}]}`, remote: local, status: 409, code: "insufficient_points"},
		{name: "unknown reward", method: "POST", path: "/v1/sales", body: `{"id":"rw1","member":"M00000017","lines":[{"no":1,"sku":"a","quantity":1,"unit_price":1000}],"redemptions":[{"reward_id":"nope"}]}`, remote: local, status: 404, code: "unknown_reward"},
		{name: "reward worth more than the basket", method: "POST", path: "/v1/sales", body: `{"id":"rw2","member":"M00000017","lines":[{"no":1,"sku":"a","quantity":1,"unit_price":100}],"redemptions":[{"reward_id":"coffee"}]}`, remote: local, status: 409, code: "reward_exceeds_sale"},
		{name: "remote without token", method: "GET", path: "/v1/status", remote: "192.0.2.7:4000", status: 401, code: "unauthorized"},
		{name: "remote with wrong token", method: "GET", path: "/v1/status", remote: "192.0.2.7:4000", auth: "Bearer nope", status: 401, code: "unauthorized"},
		{name: "remote sale without token", method: "POST", path: "/v1/sales", body: sale1, remote: "192.0.2.7:4000", status: 401, code: "unauthorized"},
		{name: "unknown sale", method: "GET", path: "/v1/sales/nope", remote: local, status: 404, code: "unknown_sale"},
		{name: "refund unknown sale", method: "POST", path: "/v1/sales/nope/refund", body: `{"id":"rf1"}`, remote: local, status: 404, code: "unknown_sale"},
		{name: "void without reason", method: "POST", path: "/v1/sales/nope/void", body: `{"id":"v1"}`, remote: local, status: 400, code: "missing_id"},
		{name: "lookup unknown alias", method: "GET", path: "/v1/members?alias=404", remote: local, status: 404, code: "unknown_member"},
		{name: "enrol taken alias", method: "POST", path: "/v1/members", body: `{"id":"m2","name":"Eve","aliases":["M00000017"]}`, remote: local, status: 409, code: "alias_taken"},
		{name: "consent unknown member", method: "PUT", path: "/v1/members/zz/consent", body: `{"given":true}`, remote: local, status: 404, code: "unknown_member"},
		{name: "complete empty checkout", method: "POST", path: "/v1/checkout/complete", remote: local, status: 409, code: "wrong_state"},
		{name: "scan without simulator", method: "POST", path: "/v1/scan", body: `{"code":"4006381333931"}`, remote: local, status: 503, code: "no_simulated_device"},
		{name: "bad export format", method: "GET", path: "/v1/export/sales?format=xml", remote: local, status: 400, code: "invalid_format"},
		// a call the API does not have: the error shape, not the mux's "404 page not found" text
		{name: "unknown call", method: "GET", path: "/v1/nothing", remote: local, status: 404, code: "not_found"},
		{name: "unknown export", method: "GET", path: "/v1/export/bogus", remote: local, status: 404, code: "not_found"},
		{name: "method not served", method: "DELETE", path: "/v1/sales/pos-1", remote: local, status: 404, code: "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			before := e.stats(t)
			code, out := e.call(t, tc.method, tc.path, tc.body, tc.remote, tc.auth)
			if code != tc.status || out["code"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", code, out, tc.status, tc.code)
			}
			if msg, _ := out["message"].(string); len(msg) < 10 {
				t.Errorf("message %q is not a sentence", msg)
			}
			if after := e.stats(t); after != before {
				t.Fatalf("ledger changed: %+v -> %+v", before, after)
			}
		})
	}
}

func TestRemoteWithTokenAndHealthz(t *testing.T) {
	e := setup(t)
	if code, _ := e.call(t, "GET", "/v1/status", "", "192.0.2.7:4000", "Bearer "+token); code != 200 {
		t.Fatalf("token: %d", code)
	}
	if code, out := e.call(t, "GET", "/healthz", "", "192.0.2.7:4000", ""); code != 200 || out["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, out)
	}
	// real loopback TCP through the test server
	resp, err := http.Get(e.srv.URL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("loopback status %d", resp.StatusCode)
	}
}

func TestUnixSocketIsLocal(t *testing.T) {
	e := setup(t)
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.h}
	go srv.Serve(ln)
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://unix/v1/members?alias=%2B972500000001")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var mr api.MemberResponse
	if err := json.NewDecoder(resp.Body).Decode(&mr); err != nil || resp.StatusCode != 200 || mr.Member.ID != "m1" {
		t.Fatalf("unix: %d %v %+v", resp.StatusCode, err, mr)
	}
}

func TestRefundVoidConsentEnrol(t *testing.T) {
	e := setup(t)
	if code, out := e.call(t, "POST", "/v1/sales", `{"id":"s2","member_id":"m1","lines":[{"no":1,"sku":"a","quantity":2,"unit_price":1000},{"no":2,"sku":"b","quantity":1,"unit_price":500}]}`, local, ""); code != 201 || out["balance"].(float64) != 25 {
		t.Fatalf("sale: %d %v", code, out)
	}
	code, out := e.call(t, "POST", "/v1/sales/s2/refund", `{"id":"rf-1","lines":[{"no":1,"quantity":1}]}`, local, "")
	if code != 201 || out["balance"].(float64) != 15 {
		t.Fatalf("refund: %d %v", code, out)
	}
	code, out = e.call(t, "POST", "/v1/sales/s2/refund", `{"id":"rf-1","lines":[{"no":1,"quantity":1}]}`, local, "")
	if code != 200 || out["replayed"] != true || out["balance"].(float64) != 15 {
		t.Fatalf("refund replay: %d %v", code, out)
	}
	code, out = e.call(t, "POST", "/v1/sales/s2/refund", `{"id":"rf-2","lines":[{"no":1,"quantity":5}]}`, local, "")
	if code != 409 || out["code"] != "refund_exceeds_sale" {
		t.Fatalf("refund too much: %d %v", code, out)
	}
	code, out = e.call(t, "POST", "/v1/sales/s2/void", `{"id":"v-1","reason":"wrong member"}`, local, "")
	if code != 201 || out["balance"].(float64) != 0 {
		t.Fatalf("void: %d %v", code, out)
	}
	// the sale shows its refund and its void
	code, out = e.call(t, "GET", "/v1/sales/s2", "", local, "")
	if rfs, _ := out["refunds"].([]any); code != 200 || out["id"] != "s2" || len(rfs) != 2 || rfs[0].(map[string]any)["id"] != "rf-1" || rfs[1].(map[string]any)["void"] != true {
		t.Fatalf("sale with refunds: %d %v", code, out)
	}
	// the statement, by phone, explains the balance
	code, out = e.call(t, "GET", "/v1/members/+972500000001/statement", "", local, "")
	if lines, _ := out["lines"].([]any); code != 200 || len(lines) < 3 || out["balance"].(float64) != 0 || out["local"].(float64) != 0 {
		t.Fatalf("statement: %d %v", code, out)
	}
	if code, out = e.call(t, "GET", "/v1/members/nobody/statement", "", local, ""); code != 404 || out["code"] != "unknown_member" {
		t.Fatalf("statement of nobody: %d %v", code, out)
	}
	code, out = e.call(t, "PUT", "/v1/members/m1/consent", `{"given":true,"channel":"in-store"}`, local, "")
	if code != 200 || out["member"].(map[string]any)["consent"].(map[string]any)["given"] != true {
		t.Fatalf("consent: %d %v", code, out)
	}
	code, out = e.call(t, "POST", "/v1/members", `{"id":"m2","name":"Ivan","aliases":["M00000025"],"language":"bg"}`, local, "")
	if code != 201 || out["member"].(map[string]any)["id"] != "m2" {
		t.Fatalf("enrol: %d %v", code, out)
	}
	code, out = e.call(t, "GET", "/v1/members?alias=M00000025", "", local, "")
	if code != 200 || out["balance"].(float64) != 0 {
		t.Fatalf("lookup: %d %v", code, out)
	}
}

func TestCheckoutThroughAPI(t *testing.T) {
	e := setup(t)
	steps := []struct{ path, body string }{
		{"/v1/checkout/item", `{"sku":"4006381333931","quantity":4}`},
		{"/v1/checkout/member", `{"alias":"+972500000001"}`},
	}
	for _, s := range steps {
		if code, out := e.call(t, "POST", s.path, s.body, local, ""); code != 200 {
			t.Fatalf("%s: %d %v", s.path, code, out)
		}
	}
	code, out := e.call(t, "POST", "/v1/checkout/complete", "", local, "")
	if code != 200 || out["sale"].(map[string]any)["balance"].(float64) != 10 {
		t.Fatalf("complete: %d %v", code, out)
	}
	before := e.stats(t)
	code, out = e.call(t, "POST", "/v1/checkout/complete", "", local, "")
	if code != 409 || out["code"] != "already_completed" {
		t.Fatalf("double complete: %d %v", code, out)
	}
	if after := e.stats(t); after != before {
		t.Fatalf("double complete changed the ledger")
	}
	if code, out := e.call(t, "POST", "/v1/checkout/item", `{"sku":"000"}`, local, ""); code != 404 || out["code"] != "unknown_item" {
		t.Fatalf("unknown item: %d %v", code, out)
	}
}

func TestExportAndBackupAndMetrics(t *testing.T) {
	e := setup(t)
	e.call(t, "POST", "/v1/sales", sale1, local, "")
	req := httptest.NewRequest("GET", "/v1/export/sales?format=csv", nil)
	req.RemoteAddr = local
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if rec.Code != 200 || len(lines) != 2 || !strings.HasPrefix(lines[1], "pos-1,r1,") {
		t.Fatalf("csv: %d %q", rec.Code, rec.Body.String())
	}
	resp, err := http.Get(e.srv.URL + "/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("X-Ledger-Size"); got != strconv.Itoa(len(data)) {
		t.Fatalf("X-Ledger-Size %q for a backup of %d bytes", got, len(data))
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := writeFile(path, data); err != nil {
		t.Fatal(err)
	}
	cp, err := ledger.Open(path, &ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("backup does not open: %v", err)
	}
	defer cp.Close()
	if err := cp.Check(); err != nil {
		t.Fatal(err)
	}
	if s, err := cp.Sale("pos-1"); err != nil || s.ID != "pos-1" {
		t.Fatalf("backup lacks the sale: %v", err)
	}
	resp, err = http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(data, []byte(`loyalty_api_requests_total{code="201"}`)) || !bytes.Contains(data, []byte(`loyalty_sales_total{source="api"} 1`)) {
		t.Fatalf("metrics:\n%s", data)
	}
}

func writeFile(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }

// TestMalformedJSONSpeaksAPI: a body of the wrong shape is explained with
// the request's own field names and the kind of value wanted, never with
// Go's types ("Go struct field ConsentBody.given of type bool").
func TestMalformedJSONSpeaksAPI(t *testing.T) {
	e := setup(t)
	const local = "127.0.0.1:5000"
	for _, tc := range []struct{ method, path, body, want string }{
		{"PUT", "/v1/members/m1/consent", `{"given":"yes","channel":"in-store"}`, `"given" must be true or false, not string`},
		{"POST", "/v1/sales", `{"id":"x","lines":[{"no":"one"}]}`, `"lines.no" must be an integer, not string`},
		{"POST", "/v1/sales", `{"id":"x","lines":{}}`, `"lines" must be a list, not object`},
		{"POST", "/v1/sales", `{"id":"x",`, "the JSON ends early"},
		{"POST", "/v1/sales", `{"id":"x"]`, "not JSON at byte"},
		{"POST", "/v1/sales", `[1]`, "the body must be an object"},
		{"POST", "/v1/sales", `{"id":"x","bogus":1}`, `unknown field "bogus"`},
	} {
		code, body := e.call(t, tc.method, tc.path, tc.body, local, "")
		msg, _ := body["message"].(string)
		if code != 400 || body["code"] != "malformed_json" || !strings.Contains(msg, tc.want) || strings.Contains(msg, "Go ") || strings.Contains(msg, "struct") {
			t.Errorf("%s %s %s: %d %v, want 400 malformed_json saying %q", tc.method, tc.path, tc.body, code, body, tc.want)
		}
	}
}

func TestHealthzDegraded(t *testing.T) {
	e := setup(t)
	var d map[string]string
	s := api.New(api.Options{Ledger: e.l, Degraded: func() map[string]string { return d }})
	h := s.Handler(nil)
	get := func() (int, map[string]any) {
		req := httptest.NewRequest("GET", "/healthz", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	if code, out := get(); code != 200 || out["status"] != "ok" {
		t.Fatalf("healthy: %d %v", code, out)
	}
	d = map[string]string{"display": "unhealthy: display write: device not taking data"}
	code, out := get()
	if code != 200 || out["status"] != "degraded" || out["degraded"].(map[string]any)["display"] != d["display"] {
		t.Fatalf("degraded: %d %v", code, out)
	}
}

// TestRegisterRestore: without sync there is no stream to restore (409,
// nothing changed); with it the answer says what the restore started, and
// a caller from the network without the token is refused.
func TestRegisterRestore(t *testing.T) {
	e := setup(t)
	before := e.stats(t)
	if code, out := e.call(t, "POST", "/v1/register/restore", "", local, ""); code != 409 || out["code"] != "sync_disabled" {
		t.Fatalf("without sync: %d %v", code, out)
	}
	if after := e.stats(t); after != before {
		t.Fatalf("ledger changed: %+v -> %+v", before, after)
	}
	calls := 0
	s := api.New(api.Options{Ledger: e.l, Hosts: []string{"example.com"}, Restore: func() (api.RestoreInfo, error) {
		calls++
		return api.RestoreInfo{Incarnation: "abcd", FromLocal: 4, Waiting: true}, nil
	}})
	e.h = s.Handler(nil)
	if code, _ := e.call(t, "POST", "/v1/register/restore", "", "203.0.113.9:4000", ""); code != 401 && code != 403 {
		t.Fatalf("from the network without a token: %d", code)
	}
	code, out := e.call(t, "POST", "/v1/register/restore", "", local, "")
	if code != 200 || out["incarnation"] != "abcd" || out["from_local"].(float64) != 4 || out["waiting"] != true || calls != 1 {
		t.Fatalf("restore: %d %v (calls %d)", code, out, calls)
	}
}

// TestRegisterRestoreTwiceWhileWaiting: a second restore while the first
// new incarnation still waits for head office's watermark, with an event
// recorded since, is refused (409 restore_waiting) and changes nothing;
// with nothing recorded since it answers the waiting incarnation again.
func TestRegisterRestoreTwiceWhileWaiting(t *testing.T) {
	e := setup(t)
	s := api.New(api.Options{Ledger: e.l, Hosts: []string{"example.com"}, Restore: func() (api.RestoreInfo, error) {
		ep, err := e.l.Reincarnate(true)
		return api.RestoreInfo{Incarnation: ep.Incarnation, FromLocal: ep.From, Waiting: true}, err
	}})
	e.h = s.Handler(nil)
	code, first := e.call(t, "POST", "/v1/register/restore", "", local, "")
	if code != 200 {
		t.Fatalf("first restore: %d %v", code, first)
	}
	if code, again := e.call(t, "POST", "/v1/register/restore", "", local, ""); code != 200 || again["incarnation"] != first["incarnation"] {
		t.Fatalf("again with nothing recorded: %d %v, want the waiting incarnation %v", code, again, first["incarnation"])
	}
	if _, err := e.l.Enrol(context.Background(), ledger.Member{ID: "m-restore"}); err != nil {
		t.Fatal(err)
	}
	before := e.stats(t)
	code, out := e.call(t, "POST", "/v1/register/restore", "", local, "")
	if code != 409 || out["code"] != "restore_waiting" {
		t.Fatalf("again after a recorded event: %d %v, want 409 restore_waiting", code, out)
	}
	if after := e.stats(t); after != before {
		t.Fatalf("ledger changed: %+v -> %+v", before, after)
	}
	eps, err := e.l.Epochs()
	if err != nil || eps[len(eps)-1].Incarnation != first["incarnation"] {
		t.Fatalf("epochs %+v (%v): the waiting incarnation is no longer the last", eps, err)
	}
}

// TestConsentInput: consent is recorded with the register's time and clock
// trust and a documented channel, whether at enrolment or by PUT
// .../consent; a body that does not say given or true/false, or names
// another channel, is 400 invalid_input and changes nothing. Enrolment
// stored {"given":true} at 0001-01-01 with no channel and no history, {}
// recorded a withdrawal, and "carrier-pigeon" was taken.
func TestConsentInput(t *testing.T) {
	e := setup(t)
	start := time.Now().Add(-time.Minute)
	code, out := e.call(t, "POST", "/v1/members", `{"id":"m2","name":"Ivan","aliases":["M00000025"],"consent":{"given":true,"at":"1970-01-01T00:00:00Z","clock_trusted":true},"consent_history":[{"given":false,"channel":"web","at":"1970-01-01T00:00:00Z"}]}`, local, "")
	if code != 201 {
		t.Fatalf("enrol with consent: %d %v", code, out)
	}
	m, err := e.l.Member("m2")
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Consent; !c.Given || c.Channel != "api" || c.At.Before(start) || len(m.ConsentHistory) != 1 || m.ConsentHistory[0] != c {
		t.Fatalf("consent at enrolment: %+v, history %+v; want given by api, stamped now, the history that one", c, m.ConsentHistory)
	}
	before := e.stats(t)
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/v1/members/m2/consent", `{}`},
		{"PUT", "/v1/members/m2/consent", `{"channel":"in-store"}`},
		{"PUT", "/v1/members/m2/consent", `{"given":false,"channel":"carrier-pigeon"}`},
		{"POST", "/v1/members", `{"id":"m3","name":"Eve","consent":{"given":true,"channel":"carrier-pigeon"}}`},
		// The register's own fields (outside tester: a caller could enrol
		// a member straight into a tier, back-dated, at another register).
		{"POST", "/v1/members", `{"id":"m3","name":"Eve","tier":"gold"}`},
		{"POST", "/v1/members", `{"id":"m3","name":"Eve","enrolled_at":"2020-01-01T00:00:00Z"}`},
		{"POST", "/v1/members", `{"id":"m3","name":"Eve","enrolled_clock_trusted":true}`},
		{"POST", "/v1/members", `{"id":"m3","name":"Eve","home_register":"r9"}`},
	} {
		code, out := e.call(t, tc.method, tc.path, tc.body, local, "")
		if code != 400 || out["code"] != "invalid_input" {
			t.Errorf("%s %s %s: %d %v, want 400 invalid_input", tc.method, tc.path, tc.body, code, out)
		}
	}
	if after := e.stats(t); after != before {
		t.Fatalf("refused consent input changed the ledger: %+v -> %+v", before, after)
	}
	if m, _ := e.l.Member("m2"); !m.Consent.Given {
		t.Fatalf("a refused body withdrew consent: %+v", m.Consent)
	}
	for _, ch := range []string{"in-store", "api", "web", "paper"} {
		if code, out := e.call(t, "PUT", "/v1/members/m2/consent", `{"given":false,"channel":"`+ch+`"}`, local, ""); code != 200 {
			t.Errorf("channel %s: %d %v", ch, code, out)
		}
	}
}

// TestNothingLeftToGiveBack: a refund or void of a sale with nothing left
// says why (fully refunded, or voided), not that the refund is more than
// what is left (what a void of a fully refunded sale said).
func TestNothingLeftToGiveBack(t *testing.T) {
	e := setup(t)
	for _, s := range []string{"s3", "s4"} {
		if code, out := e.call(t, "POST", "/v1/sales", `{"id":"`+s+`","member_id":"m1","lines":[{"no":1,"sku":"a","quantity":1,"unit_price":1000}]}`, local, ""); code != 201 {
			t.Fatalf("sale %s: %d %v", s, code, out)
		}
	}
	if code, out := e.call(t, "POST", "/v1/sales/s3/refund", `{"id":"rf-3"}`, local, ""); code != 201 {
		t.Fatalf("refund: %d %v", code, out)
	}
	if code, out := e.call(t, "POST", "/v1/sales/s4/void", `{"id":"v-4","reason":"wrong member"}`, local, ""); code != 201 {
		t.Fatalf("void: %d %v", code, out)
	}
	for _, tc := range []struct{ path, body, want string }{
		{"/v1/sales/s3/void", `{"id":"v-3","reason":"again"}`, "already fully refunded"},
		{"/v1/sales/s3/refund", `{"id":"rf-3b"}`, "already fully refunded"},
		{"/v1/sales/s4/refund", `{"id":"rf-4"}`, "was voided"},
		{"/v1/sales/s4/void", `{"id":"v-4b","reason":"again"}`, "was voided"},
	} {
		code, out := e.call(t, "POST", tc.path, tc.body, local, "")
		if msg, _ := out["message"].(string); code != 409 || out["code"] != "refund_exceeds_sale" || !strings.Contains(msg, tc.want) {
			t.Errorf("POST %s: %d %v, want 409 saying %q", tc.path, code, out, tc.want)
		}
	}
}

// failingBackup is a ledger whose Backup fails after writing part bytes.
type failingBackup struct {
	*ledger.Ledger
	part int
	err  error
}

func (f failingBackup) Backup(w io.Writer) (int64, error) {
	if s, ok := w.(ledger.BackupSizer); ok {
		s.BackupSize(int64(f.part) * 2)
	}
	if f.part > 0 {
		n, _ := w.Write(make([]byte, f.part))
		return int64(n), f.err
	}
	return 0, f.err
}

// TestBackupFails: a backup that fails before its first byte is an error
// answer (507 on a full disk, without X-Ledger-Size); one that fails
// later is a broken transfer, never a short body that ends cleanly.
func TestBackupFails(t *testing.T) {
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", Engine: &ledgertest.Engine{Version: 1}})
	for _, tc := range []struct {
		part   int
		err    error
		status int
		code   string
	}{
		{0, fmt.Errorf("ledger backup: %w", ledger.ErrNoSpace), 507, "no_space"},
		{0, fmt.Errorf("ledger backup: %w", ledger.ErrStorage), 503, "storage_failed"},
		{0, errors.New("ledger backup: read error"), 500, "internal"},
		{4096, errors.New("ledger backup: read error"), 200, ""},
	} {
		s := api.New(api.Options{Ledger: failingBackup{l, tc.part, tc.err}, Token: token, Hosts: []string{"example.com"}})
		srv := httptest.NewServer(s.Handler(nil))
		resp, err := http.Get(srv.URL + "/v1/backup")
		if err != nil {
			t.Fatal(err)
		}
		data, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		var body struct{ Code string }
		_ = json.Unmarshal(data, &body)
		if resp.StatusCode != tc.status || body.Code != tc.code {
			t.Errorf("%v after %d bytes: %d %q, want %d %q", tc.err, tc.part, resp.StatusCode, body.Code, tc.status, tc.code)
		}
		if tc.part == 0 && resp.Header.Get("X-Ledger-Size") != "" {
			t.Errorf("%v: X-Ledger-Size %q on an error answer", tc.err, resp.Header.Get("X-Ledger-Size"))
		}
		if tc.part > 0 && (rerr == nil || resp.Header.Get("X-Ledger-Size") != "8192") {
			t.Errorf("a backup broken after %d bytes: read %d bytes, error %v, size %q; want a broken transfer", tc.part, len(data), rerr, resp.Header.Get("X-Ledger-Size"))
		}
	}
}

// exportFails is a ledger whose exports fail before the first row (a
// full disk: every export first takes the pending sales into the file).
type exportFails struct {
	*ledger.Ledger
	err error
}

func (f exportFails) ForEachSale(func(ledger.Sale) error) error { return f.err }

// TestExportFailsAtStart: an export that fails before its first row is
// an error answer, not a 200 with a CSV header and no rows (outside15:
// loyaltyctl export wrote the header only and exited 0 on a full disk).
func TestExportFailsAtStart(t *testing.T) {
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", Engine: &ledgertest.Engine{Version: 1}})
	for _, format := range []string{"csv", "json"} {
		s := api.New(api.Options{Ledger: exportFails{l, fmt.Errorf("ledger export: %w", ledger.ErrNoSpace)}, Token: token, Hosts: []string{"example.com"}})
		req := httptest.NewRequest("GET", "/v1/export/sales?format="+format, nil)
		req.RemoteAddr = local
		rec := httptest.NewRecorder()
		s.Handler(nil).ServeHTTP(rec, req)
		var body struct{ Code string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 507 || body.Code != "no_space" {
			t.Errorf("%s export on a full disk: %d %q", format, rec.Code, rec.Body.String())
		}
	}
}

// TestMemberNamedByID: wherever a member is named, the member id is
// accepted as well as an alias (docs/api.md; outside15: ?alias=, a
// sale's member and the checkout's member refused the id).
func TestMemberNamedByID(t *testing.T) {
	e := setup(t)
	if code, out := e.call(t, "GET", "/v1/members?alias=m1", "", local, ""); code != 200 || out["member"].(map[string]any)["id"] != "m1" {
		t.Fatalf("look-up by id: %d %v", code, out)
	}
	sale := `{"id":"pos-id","member":"m1","lines":[{"no":1,"sku":"4006381333931","quantity":1,"unit_price":250}]}`
	if code, out := e.call(t, "POST", "/v1/sales", sale, local, ""); code != 201 && code != 200 {
		t.Fatalf("sale naming the member id: %d %v", code, out)
	}
	if s, err := e.l.Sale("pos-id"); err != nil || s.MemberID != "m1" {
		t.Fatalf("the sale: %+v %v", s, err)
	}
	for _, step := range []struct{ path, body string }{
		{"/v1/checkout/item", `{"sku":"4006381333931","quantity":1}`},
		{"/v1/checkout/member", `{"alias":"m1"}`},
	} {
		if code, out := e.call(t, "POST", step.path, step.body, local, ""); code != 200 {
			t.Fatalf("%s: %d %v", step.path, code, out)
		}
	}
	if code, out := e.call(t, "GET", "/v1/members?alias=nobody", "", local, ""); code != 404 || out["code"] != "unknown_member" {
		t.Fatalf("unknown: %d %v", code, out)
	}
}
