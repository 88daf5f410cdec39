package apiclient_test

import (
	"encoding/json"
	"testing"

	"github.com/loyalty-terminal/loyalty/cmd/internal/apiclient"
)

func TestField(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal([]byte(`{"sync":{"summary":"online, 0 pending","pending":0},"member":{"consent":{"given":true}},"version":"1.0"}`), &m); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path []string
		want any
	}{
		{[]string{"sync", "summary"}, "online, 0 pending"},
		{[]string{"sync", "pending"}, float64(0)},
		{[]string{"member", "consent", "given"}, true},
		{[]string{"version"}, "1.0"},
		{[]string{"sync", "missing"}, nil},
		{[]string{"nothing", "here"}, nil},
		{[]string{"version", "deeper"}, nil}, // not an object
	} {
		if got := apiclient.Field(m, tc.path...); got != tc.want {
			t.Errorf("Field(%v) = %#v, want %#v", tc.path, got, tc.want)
		}
	}
	if got := apiclient.Field(m); got == nil {
		t.Error("Field with no path should be the object itself")
	}
	if got := apiclient.Field(nil, "x"); got != nil {
		t.Errorf("Field(nil) = %#v", got)
	}
}
