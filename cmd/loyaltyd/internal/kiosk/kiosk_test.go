package kiosk_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/kiosk"
	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// wait bounds every testkit.Eventually in this package.
const wait = 10 * time.Second

type view struct {
	State    string `json:"state"`
	Member   string `json:"member,omitempty"`
	MemberID string `json:"member_id,omitempty"`
	Language string `json:"language,omitempty"`
	Balance  int64  `json:"balance"`
	Earned   int64  `json:"earned"`
	Offline  bool   `json:"offline"`
}

func TestSSEDeliversLatestThenUpdates(t *testing.T) {
	h := kiosk.New(kiosk.Options{MaxClients: 2})
	if err := h.Publish(view{State: "idle"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() string {
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "data: ") {
				return strings.TrimPrefix(l, "data: ")
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return ""
	}
	if got := next(); got != `{"state":"idle","balance":0,"earned":0,"offline":false}` {
		t.Fatalf("first event %s", got)
	}
	testkit.Eventually(t, wait, "subscriber", func() bool { return h.Clients() == 1 })
	_ = h.Publish(view{State: "points", MemberID: "m1", Balance: 132})
	if got := next(); !strings.Contains(got, `"balance":132`) {
		t.Fatalf("update %s", got)
	}
	cancel()
	testkit.Eventually(t, wait, "unsubscribe", func() bool { return h.Clients() == 0 })
}

func TestTooManyClients(t *testing.T) {
	h := kiosk.New(kiosk.Options{MaxClients: 1})
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	testkit.Eventually(t, wait, "subscriber", func() bool { return h.Clients() == 1 })
	resp2, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second client status %d", resp2.StatusCode)
	}
}

func TestPageServed(t *testing.T) {
	h := kiosk.New(kiosk.Options{})
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "EventSource") || !strings.Contains(rec.Body.String(), "ברוכים הבאים") {
		t.Fatalf("page: %d", rec.Code)
	}
}

const chromiumPath = "/usr/bin/chromium"

// dumpDOM loads url in headless Chromium and returns the DOM after the
// virtual time budget; the page renders every view into data attributes.
func dumpDOM(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	dom, err := runChromium(ctx, t.TempDir(), url)
	if err != nil {
		t.Fatal(err)
	}
	return dom
}

// runChromium is dumpDOM for a goroutine (no t.Fatal there).
func runChromium(ctx context.Context, profile, url string) (string, error) {
	cmd := exec.CommandContext(ctx, chromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--virtual-time-budget=4000", "--dump-dom", url)
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("chromium: %w", err)
	}
	return string(out), nil
}

func TestChromiumShowsLiveBalanceChange(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testkit.Missing(t, "chromium", chromiumPath+" not found; make testdeps installs it")
	}
	h := kiosk.New(kiosk.Options{})
	_ = h.Publish(view{State: "points", Member: "Дана", MemberID: "m1", Language: "bg", Balance: 120})
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		dom string
		err error
	}
	done := make(chan result, 1)
	profile := t.TempDir()
	go func() {
		dom, err := runChromium(ctx, profile, srv.URL+"/?until=receipt")
		done <- result{dom, err}
	}()
	// Change the balance only once the page is connected: the DOM can then
	// show 132 only if the live update reached it. Chromium's start is
	// bounded by ctx (a loaded machine takes long); one that exits before
	// connecting fails the test at once.
	var res result
	for connected := false; !connected; {
		select {
		case res = <-done:
			t.Fatalf("chromium ended before the page connected: %v\n%s", res.err, res.dom)
		case <-ctx.Done():
			t.Fatal("the page never connected")
		case <-time.After(20 * time.Millisecond):
			connected = h.Clients() == 1
		}
	}
	_ = h.Publish(view{State: "receipt", Member: "Дана", MemberID: "m1", Language: "bg", Balance: 132, Earned: 12, Offline: true})
	res = <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	dom := res.dom
	for _, want := range []string{`data-balance="132"`, `data-state="receipt"`, `data-offline="true"`, `lang="bg"`, "+12 точки от тази покупка", "Няма връзка"} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q:\n%s", want, dom)
		}
	}
}

func TestChromiumHebrewRTL(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testkit.Missing(t, "chromium", chromiumPath+" not found; make testdeps installs it")
	}
	h := kiosk.New(kiosk.Options{})
	_ = h.Publish(map[string]any{"state": "points", "member": "דנה", "member_id": "m1", "language": "he-IL", "balance": 77,
		"tier": "silver", "next_tier": "gold", "tier_spend_to_go": 12345})
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dom := dumpDOM(t, ctx, srv.URL+"/?until=points")
	for _, want := range []string{`dir="rtl"`, `lang="he"`, `data-balance="77"`, "שלום, דנה", "עוד 123.45 לדרגת gold"} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q:\n%s", want, dom)
		}
	}
}

// TestCloseEndsStreams: Close ends live pages' streams (a server shutting
// down is not held by them) and refuses new ones.
func TestCloseEndsStreams(t *testing.T) {
	h := kiosk.New(kiosk.Options{})
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); ended <- err }()
	for h.Clients() != 1 {
		time.Sleep(time.Millisecond)
	}
	h.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end on Close")
	}
	resp2, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("new stream after Close: %d", resp2.StatusCode)
	}
}

func TestDecimals(t *testing.T) {
	for unit, want := range map[int64]int{1: 0, 10: 1, 100: 2, 1000: 3} {
		if got := kiosk.Decimals(unit); got != want {
			t.Errorf("Decimals(%d) = %d, want %d", unit, got, want)
		}
	}
}

// TestChromiumCurrencyWithoutMinorUnits: a currency without minor units
// (rules.unit 1) is shown without decimals, with the configured currency
// (before: the page was never told and showed 12.34 for 1234).
func TestChromiumCurrencyWithoutMinorUnits(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testkit.Missing(t, "chromium", chromiumPath+" not found; make testdeps installs it")
	}
	h := kiosk.New(kiosk.Options{Unit: 1, Currency: "JPY"})
	_ = h.Publish(map[string]any{"state": "basket", "lines": []map[string]any{{"sku": "a", "name": "Tea", "quantity": 1, "amount": 1234}}, "total": 1234})
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dom := dumpDOM(t, ctx, srv.URL+"/?until=basket")
	if !strings.Contains(dom, "Total 1234 JPY") || strings.Contains(dom, "12.34") {
		t.Errorf("DOM does not show 1234 JPY without decimals:\n%s", dom)
	}
}

// TestChromiumBonusAffordableAndRewardLine: the receipt says how much of the
// points is bonus, the page says when a reward is affordable now, and a
// reward chosen for the sale is a negative line of the basket (before:
// "+152 points" only, "N more points for X" only, no reward line).
func TestChromiumBonusAffordableAndRewardLine(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testkit.Missing(t, "chromium", chromiumPath+" not found; make testdeps installs it")
	}
	cases := []struct {
		name  string
		view  map[string]any
		until string
		want  []string
	}{
		{"bonus", map[string]any{"state": "receipt", "member": "Dana", "member_id": "m1", "language": "en", "balance": 152,
			"earned": 152, "bonus": 70, "bonuses": []map[string]any{{"reason": "first-purchase", "points": 50}, {"reason": "campaign:tue", "points": 20}}},
			"receipt", []string{"+152 points on this purchase (incl. 50 welcome bonus, 20 bonus)"}},
		{"affordable", map[string]any{"state": "points", "member": "דנה", "member_id": "m1", "language": "he", "balance": 120,
			"can_redeem": "Free coffee", "next_reward": "Tote bag", "to_next": 380},
			"points", []string{"אפשר לממש עכשיו: Free coffee · עוד 380 נקודות עד Tote bag"}},
		{"reward line", map[string]any{"state": "member", "member": "Дана", "member_id": "m1", "language": "bg", "balance": 20,
			"lines":     []map[string]any{{"sku": "a", "name": "Latte", "quantity": 1, "amount": 450}},
			"discounts": []map[string]any{{"reward_id": "coffee", "name": "Free coffee", "amount": -350}}, "total": 100},
			"member", []string{`<tr class="reward"><td>Free coffee</td><td class="amt">-3.50</td></tr>`, "Общо 1.00"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := kiosk.New(kiosk.Options{})
			_ = h.Publish(tc.view)
			srv := httptest.NewServer(h.Handler())
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dom := dumpDOM(t, ctx, srv.URL+"/?until="+tc.until)
			for _, want := range tc.want {
				if !strings.Contains(dom, want) {
					t.Errorf("DOM lacks %q:\n%s", want, dom)
				}
			}
		})
	}
}

// TestPageWordsInEveryLanguage: the bonus, affordable-reward words exist in
// en, he and bg (the Chromium test renders one language each).
func TestPageWordsInEveryLanguage(t *testing.T) {
	rec := httptest.NewRecorder()
	kiosk.New(kiosk.Options{}).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	page := rec.Body.String()
	for _, want := range []string{"welcome bonus", "בונוס הצטרפות", "бонус за добре дошли", "birthday bonus", "בונוס יום הולדת", "бонус за рожден ден",
		"You can redeem {name} now", "אפשר לממש עכשיו: {name}", "Можете да вземете {name} сега"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
