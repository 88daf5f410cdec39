package hqreport_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqreport"
	"github.com/loyalty-terminal/loyalty/sync/hq/contactlog"
)

func TestMarkHandler(t *testing.T) {
	store, err := contactlog.Open(filepath.Join(t.TempDir(), "c.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := func() time.Time { return time.Date(2026, 6, 30, 9, 0, 0, 0, time.UTC) }
	srv := httptest.NewServer(hqreport.MarkHandler(store, now)) // listens on 127.0.0.1
	defer srv.Close()
	for _, tc := range []struct {
		name, method, body string
		want               int
	}{
		{"record", "POST", `{"member_id":"m1","kind":"due","channel":"sms"}`, http.StatusCreated},
		{"retry is not a second contact", "POST", `{"member_id":"m1","kind":"due","at":"2026-06-30","channel":"sms"}`, http.StatusOK},
		{"another channel is another contact", "POST", `{"member_id":"m1","kind":"due","at":"2026-06-30","channel":"email"}`, http.StatusCreated},
		{"no channel", "POST", `{"member_id":"m1","kind":"due"}`, http.StatusBadRequest},
		{"unknown channel", "POST", `{"member_id":"m1","kind":"due","channel":"pigeon"}`, http.StatusBadRequest},
		{"unknown kind", "POST", `{"member_id":"m1","kind":"spam","channel":"sms"}`, http.StatusBadRequest},
		{"no member", "POST", `{"kind":"due","channel":"sms"}`, http.StatusBadRequest},
		{"unknown field", "POST", `{"member_id":"m1","kind":"due","extra":1}`, http.StatusBadRequest},
		{"bad time", "POST", `{"member_id":"m1","kind":"due","at":"soon","channel":"sms"}`, http.StatusBadRequest},
		{"get", "GET", ``, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	got, err := store.Contacts("m1")
	if err != nil || len(got) != 2 || got[0].Channel == got[1].Channel {
		t.Errorf("stored %+v, %v; want one contact by sms and one by email", got, err)
	}
}
