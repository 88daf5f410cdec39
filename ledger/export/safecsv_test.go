package export_test

import (
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/export"
)

func TestSafeCell(t *testing.T) {
	for in, want := range map[string]string{
		"=HYPERLINK(\"http://x\",\"y\")": "'=HYPERLINK(\"http://x\",\"y\")",
		"+cmd|' /C calc'!A0":             "'+cmd|' /C calc'!A0",
		"-2+3":                           "'-2+3",
		"@SUM(A1)":                       "'@SUM(A1)",
		"\t=1":                           "'\t=1",
		"-250":                           "-250",
		"+359888000001":                  "+359888000001",
		"-12.5":                          "-12.5",
		"Dana":                           "Dana",
		"":                               "",
		"-":                              "'-",
	} {
		if got := export.SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
	r := []string{"a", "=1+1"}
	if got := export.SafeRow(r); got[1] != "'=1+1" || r[1] != "=1+1" {
		t.Errorf("SafeRow: %q (input %q)", got, r)
	}
}
