package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

func TestRunArguments(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"no command", nil, "no command", ""},
		{"unknown command", []string{"frobnicate"}, "unknown command", ""},
		{"serve without config", []string{"serve"}, "needs -config", ""},
		{"publish without document", []string{"publish-config", "-check"}, "needs one document", ""},
		{"version", []string{"version"}, "", "loyalty-hq"},
		{"register without move", []string{"register"}, "needs move", ""},
		{"move without store", []string{"register", "move", "r1", "s2"}, "usage", ""},
		{"move with a bad id", []string{"register", "move", "-store", "x.db", "r/1", "s2"}, "invalid", ""},
		{"gap without store", []string{"register", "gap", "r1", "3", "5"}, "usage", ""},
		{"adopt without store", []string{"register", "adopt", "r1", "aaaa"}, "usage", ""},
		{"adopt with a bad id", []string{"register", "adopt", "-store", "x.db", "r1", "a/b"}, "invalid", ""},
		{"gap without numbers", []string{"register", "gap", "-store", "x.db", "r1", "3"}, "usage", ""},
		{"gap with words", []string{"register", "gap", "-store", "x.db", "r1", "three", "5"}, "sequence numbers", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errb)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("output %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}

func TestPublishConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("version: 2\ncatalogue:\n  - {sku: a, name: A, price: 100}\n"), 0o600)
	os.WriteFile(bad, []byte("version: 2\nrules:\n  version: 1\n  unit: 100\n  earn: {points_per_unit: -3}\n"), 0o600)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"publish-config", "-check", good}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"publish-config", "-check", bad}, &out, &out); err == nil || !strings.Contains(err.Error(), "nothing was published") {
		t.Fatalf("invalid rule set: %v", err)
	}
}

// The report command reads head office's store (read only) through hqreport.
func TestReportOverStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	st, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var evs []hqstore.Event
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= 6; i++ {
		sale := ledger.Sale{ID: fmt.Sprintf("s%d", i), Register: "r1", MemberID: fmt.Sprintf("m%d", i%2), Total: 1000,
			WallTime: t0.AddDate(0, 0, 10*i), ClockTrusted: true}
		data, _ := json.Marshal(sale)
		evs = append(evs, hqstore.Event{Register: "r1", Store: "s1", OutboxRecord: ledger.OutboxRecord{
			Seq: uint64(i), ID: fmt.Sprintf("r1-%d", i), Type: ledger.OutSale, Data: data}})
	}
	if _, err := st.Apply(evs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"report", "-store", path, "--as-of", "2026-03-01"}, &out, &errb); err != nil {
		t.Fatalf("report: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "members") || !strings.Contains(out.String(), "2") {
		t.Fatalf("report output:\n%s", out.String())
	}
}

// TestRegisterMove: the move is refused for a register head office never
// heard from, for its own store and for a store from which head office
// holds none of its events (a mistyped store, refused with a sentence
// that says how to check it and names -force); it moves a register to
// the store its held events came from, and with -force to any store.
func TestRegisterMove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	st, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	sale := func(store string, seq uint64) hqstore.Event {
		data, _ := json.Marshal(ledger.Sale{ID: fmt.Sprintf("s%d", seq), Register: "r1", Total: 100})
		return hqstore.Event{Register: "r1", Store: store, OutboxRecord: ledger.OutboxRecord{
			Seq: seq, ID: fmt.Sprintf("r1-%d", seq), Type: ledger.OutSale, Data: data}}
	}
	if _, err := st.Apply([]hqstore.Event{sale("s1", 1), sale("s2", 2)}); err != nil { // 2 is held as "store"
		t.Fatal(err)
	}
	st.Close()
	var out bytes.Buffer
	for _, bad := range [][]string{{"r9", "s2"}, {"r1", "s1"}, {"r1", "s3"}} {
		err := run(context.Background(), append([]string{"register", "move", "-store", path}, bad...), &out, &out)
		if err == nil {
			t.Fatalf("move %v accepted", bad)
		}
		if bad[1] == "s3" && !strings.Contains(err.Error(), "holds no event that r1 sent under store s3") {
			t.Errorf("a mistyped store refused with %q", err)
		}
	}
	if err := run(context.Background(), []string{"register", "move", "-store", path, "r1", "s2"}, &out, &out); err != nil || !strings.Contains(out.String(), "now belongs to store s2; 1 held") {
		t.Fatalf("move: %v %s", err, out.String())
	}
	if err := run(context.Background(), []string{"register", "move", "-store", path, "-force", "r1", "s4"}, &out, &out); err != nil || !strings.Contains(out.String(), "now belongs to store s4; 0 held") {
		t.Fatalf("forced move: %v %s", err, out.String())
	}
	st, err = hqstore.Open(path, &hqstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	regs, _ := st.Registers()
	if len(regs) != 1 || regs[0].Store != "s4" {
		t.Fatalf("registers %+v", regs)
	}
}

// TestRegisterGap: the operator's gap acknowledgement refuses anything but
// the gap head office waits for, and records that one.
func TestRegisterGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	st, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var evs []hqstore.Event
	for _, seq := range []uint64{1, 4} {
		data, _ := json.Marshal(ledger.Sale{ID: fmt.Sprintf("s%d", seq), Register: "r1", Seq: seq, Total: 100})
		evs = append(evs, hqstore.Event{Register: "r1", Store: "s1", OutboxRecord: ledger.OutboxRecord{
			Seq: seq, ID: fmt.Sprintf("r1-%d", seq), Type: ledger.OutSale, Data: data}})
	}
	if _, err := st.Apply(evs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out bytes.Buffer
	for _, bad := range [][]string{{"r9", "2", "3"}, {"r1", "3", "3"}, {"r1", "2", "4"}} {
		if err := run(context.Background(), append([]string{"register", "gap", "-store", path}, bad...), &out, &out); err == nil {
			t.Fatalf("gap %v accepted", bad)
		}
	}
	if err := run(context.Background(), []string{"register", "gap", "-store", path, "-note", "restored", "r1", "2", "3"}, &out, &out); err != nil ||
		!strings.Contains(out.String(), "events 2..3 recorded as lost; 1 held") {
		t.Fatalf("gap: %v %s", err, out.String())
	}
	st, err = hqstore.Open(path, &hqstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	if w, _ := st.Watermark("r1"); w != 4 {
		t.Fatalf("watermark %d", w)
	}
}

// TestHelpOfEveryCommand: -h prints the command's usage on stdout and
// succeeds, doing nothing (serve, publish-config, republish-config, keys and
// acl failed with "flag: help requested" or "-h is not STORE/REGISTER",
// contacts with "needs list, mark or log"). A flag that is not defined is
// an error naming the usage, with nothing on stdout.
func TestHelpOfEveryCommand(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"serve", "-h"}, {"publish-config", "-h"}, {"republish-config", "-h"},
		{"keys", "generate", "-h"}, {"keys", "public", "-h"}, {"acl", "-h"},
		{"report", "-h"}, {"contacts", "-h"}, {"contacts", "list", "-h"},
		{"register", "move", "-h"}, {"register", "adopt", "-h"}, {"register", "gap", "-h"},
		{"members", "export", "-h"}, {"members", "erase", "-h"}, {"members", "erasures", "-h"},
		{"review", "-h"}, {"review", "approve", "-h"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb)
		if err != nil || !strings.Contains(out.String(), "usage:") || errb.Len() != 0 {
			t.Errorf("%v: err %v, stdout %q, stderr %q", args, err, out.String(), errb.String())
		}
	}
	for _, args := range [][]string{{"serve", "-bogus"}, {"keys", "generate", "-bogus"}, {"members", "export", "-bogus", "m1"}, {"register", "move", "-bogus"}} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "flag provided but not defined: -bogus") || !strings.Contains(err.Error(), "usage: loyalty-hq") || out.Len() != 0 {
			t.Errorf("%v: err %v, stdout %q", args, err, out.String())
		}
	}
}

// TestUsageErrorsExit2: a command line loyalty-hq cannot understand exits 2
// (docs/hq.md "Commands"), with what to type; help for a command group
// prints its usage and succeeds. They exited 1, and `register -h` failed.
func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"serve"}, {"serve", "-bogus"}, {"publish-config"}, {"republish-config", "x"},
		{"keys"}, {"keys", "rotate"}, {"keys", "generate"},
		{"register"}, {"register", "move", "-store", "x.db", "r1"}, {"register", "gap", "-store", "x.db", "r1", "a", "b"},
		{"members"}, {"members", "export", "-store", "x.db"}, {"members", "erase", "-store", "x.db"},
		{"review", "-store", "x.db", "extra"}, {"review", "approve", "-store", "x.db", "r1"},
		{"report"}, {"contacts", "frob"}, {"report", "-store"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb)
		if code := exitCode(err); code != 2 || !strings.Contains(err.Error(), "usage") && !strings.Contains(err.Error(), "needs") {
			t.Errorf("%v: exit %d, err %v; want 2 and what to type", args, code, err)
		}
	}
	for _, args := range [][]string{{"register", "-h"}, {"members", "-h"}, {"keys", "-h"}} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, &out, &errb); err != nil || !strings.Contains(out.String(), "usage:") {
			t.Errorf("%v: err %v, stdout %q", args, err, out.String())
		}
	}
	if code := exitCode(errors.New("store locked")); code != 1 {
		t.Errorf("a failure exits %d, want 1", code)
	}
}
