package hqreport_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqreport"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/retentiontest"
)

var (
	updateGolden = flag.Bool("update-golden", false, "rewrite testdata/report-golden.txt from this code's output")
	goldenOut    = flag.String("golden-out", "", "also write every output TestReportGolden compares into this directory (to diff two commits)")
)

const goldenFile = "testdata/report-golden.txt"

// goldenEdge is a purchases file with what the cleaning and the writers
// must carry through unchanged: refunds (partial, full, without a sale),
// zero amounts, a sale after the as-of date, a sale before enrolment, text
// that JSON, CSV and HTML escape (<, &, quotes, U+2028, a leading =),
// categories in several scripts and a member with twenty of them, and a
// purchase late in the evening that falls on the next day in the store's
// time zone.
const goldenEdge = `member_id,sale_id,at,amount,categories
a<1>,s1,2025-01-03,12.50,coffee;bakery
a<1>,s2,2025-02-07,30.00,coffee
a<1>,s2,2025-02-08,-10.00,
a<1>,s3,2025-03-01,8.00,вино;coffee
a<1>,s4,2025-05-20T22:30:00Z,19.99,"=SUM(A1);x&y"
b&2,t1,2025-04-01,5.00,
b&2,t2,2025-04-01,0,
b&2,t3,2025-04-01,-5.00,
"c""3",u1,2024-11-11,100.00,deli
"c""3",u1,2024-11-12,-100.00,
"c""3",u2,2025-06-01,40.00,deli;wine
"c""3",u3,2025-06-15,41.00,wine
"c""3",u4,2025-07-01,42.00,wine;deli
d4,v1,2025-12-24,60.00,gift
d4,v2,2024-01-01,10.00,gift
e5,w1,2024-02-29,7.77,
e5,w2,2024-03-31,7.77,
e5,w3,2024-05-01,7.77,
e5,w4,2024-06-02,7.77,
e5,w5,2025-06-30,7.77,
f6,x1,2025-03-03,1.00,a;b;c;d;e;f;g;h;i
f6,x2,2025-03-10,2.00,i;h;g
h8,y1,2025-01-10,3.00,c01;c02;c03;c04;c05;c06;c07;c08;c09;c10;c11;c12;c13;c14;c15;c16;c17;c18;c19;c20
h8,y2,2025-02-10,4.00,c20;c18;c16;c14;c12;c10;c08;c06;c04;c02;z
h8,y3,2025-03-10,5.00,c19;c17;z;c01
`

const goldenEdgeMembers = `member_id,consent,name,email,phone,birthday,enrolled_at
a<1>,sms;email,"Ana ""<b>"" & Co",ana@example.com,+359888000001,1990-05-21,2024-12-01
b&2,no,"Boris` + "\u2028" + `line",,,--06-15,
"c""3",yes,=cmd|' /C calc'!A0,c@example.com,,,2024-10-01
d4,in-store,Dana,,,,2024-06-01
e5,phone,Елена,,+359888000005,2000-02-29,2024-01-01
f6,no,,,,,
g7,email,Gil,g@example.com,,,2025-01-01
`

const goldenEdgeConsents = `member_id,channel,consent,at,how
a<1>,sms,no,2025-03-01,"stop <reply>"
a<1>,sms,yes,2025-04-01,web
e5,phone,no,2025-07-01,call
`

type goldenCase struct {
	name string
	// args are report's arguments without --out; contacts, when set, are
	// contacts list's (a fresh contact log is added).
	args, contacts []string
	// direct, when set, analyses these members in the test (the benchmark's
	// population) instead of running the command.
	direct []retention.Member
	asOf   time.Time
}

// TestReportGolden: the same input gives byte for byte the same terminal
// summary, HTML, JSON, members CSV and contact list. The digests in
// testdata/report-golden.txt were made by the code before the report was
// made to run in one pass; a change to what the report says updates them
// (-update-golden) in the commit that makes it, with the reason.
func TestReportGolden(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	edge, edgeMembers, edgeConsents := write("edge.csv", goldenEdge), write("edge-members.csv", goldenEdgeMembers), write("edge-consents.csv", goldenEdgeConsents)
	_, purchases, members, consents := chain(t, true)
	_, _, legacy, _ := chain(t, false)
	synth, _ := synthMembers(60_000, time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC))
	round := retentiontest.Rounds[2].Format("2006-01-02")
	cases := []goldenCase{
		{name: "cdnow", args: []string{"--cdnow", cdnow}},
		{name: "chain", args: []string{"--csv", purchases, "--members", members, "--consents", consents, "--as-of", round, "--tz", "Europe/Sofia"},
			contacts: []string{"--csv", purchases, "--members", members, "--consents", consents, "--as-of", round, "--tz", "Europe/Sofia", "--format", "json", "--holdout", "0.2"}},
		{name: "chain-palive", args: []string{"--csv", purchases, "--members", legacy, "--as-of", round, "--sleeping", "palive:0.4", "--vip-share", "0.25", "--due-offset", "-3"},
			contacts: []string{"--csv", purchases, "--members", legacy, "--as-of", round, "--sleeping", "palive:0.4"}},
		{name: "chain-fixed", args: []string{"--csv", purchases, "--members", legacy, "--as-of", "2026-01-20", "--sleeping", "fixed:30", "--tz", "America/New_York"}},
		{name: "edge", args: []string{"--csv", edge, "--members", edgeMembers, "--consents", edgeConsents, "--as-of", "2025-07-15", "--tz", "Europe/Sofia"},
			contacts: []string{"--csv", edge, "--members", edgeMembers, "--consents", edgeConsents, "--as-of", "2025-07-15", "--tz", "Europe/Sofia", "--format", "json"}},
		{name: "edge-intervals", args: []string{"--csv", edge, "--members", edgeMembers, "--as-of", "2025-12-31", "--sleeping", "intervals:2"}},
		{name: "synth", direct: synth, asOf: time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)},
	}
	var got []string
	for _, c := range cases {
		outs := goldenOutputs(t, c)
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range outs {
				if !yield(k) {
					return
				}
			}
		}) {
			b := outs[name]
			sum := sha256.Sum256(b)
			got = append(got, fmt.Sprintf("%s/%s %d %s", c.name, name, len(b), hex.EncodeToString(sum[:])))
			if *goldenOut != "" {
				p := filepath.Join(*goldenOut, c.name, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if *updateGolden {
		body := "# TestReportGolden: case/output bytes sha256 (go test -run TestReportGolden -update-golden)\n" + strings.Join(got, "\n") + "\n"
		if err := os.WriteFile(goldenFile, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			want = append(want, l)
		}
	}
	if !slices.Equal(got, want) {
		for _, l := range got {
			if !slices.Contains(want, l) {
				t.Errorf("output differs: %s", l)
			}
		}
		for _, l := range want {
			if !slices.Contains(got, l) {
				t.Errorf("want: %s", l)
			}
		}
		t.Errorf("the report's output changed (diff with -golden-out DIR on both commits)")
	}
}

// goldenOutputs runs one case and returns its outputs by name.
func goldenOutputs(t *testing.T, c goldenCase) map[string][]byte {
	t.Helper()
	outs := map[string][]byte{}
	if c.direct != nil {
		a, err := retention.Analyze(c.direct, c.asOf, nil)
		if err != nil {
			t.Fatal(err)
		}
		rep := hqreport.BuildReport(a)
		for name, w := range map[string]func(io.Writer) error{"summary.txt": rep.WriteText, "report.html": rep.WriteHTML, "report.json": rep.WriteJSON, "members.csv": rep.WriteMembersCSV} {
			var b bytes.Buffer
			if err := w(&b); err != nil {
				t.Fatal(err)
			}
			outs[name] = b.Bytes()
		}
		return outs
	}
	dir := t.TempDir()
	out, _, err := run(t, append(append([]string{"report"}, c.args...), "--out", dir)...)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	// The summary names the files it wrote, which live in a fresh folder.
	outs["summary.txt"] = []byte(strings.ReplaceAll(out, dir, "OUT"))
	for _, name := range []string{"report.html", "report.json", "members.csv"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		outs[name] = b
	}
	if c.contacts != nil {
		out, _, err := run(t, append(append([]string{"contacts", "list"}, c.contacts...), "--log", filepath.Join(dir, "contacts.db"))...)
		if err != nil {
			t.Fatalf("%s contacts: %v", c.name, err)
		}
		outs["contacts"] = []byte(out)
	}
	return outs
}
