package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzSaleBody posts arbitrary bytes as a sale: the API must answer with a
// JSON error or a sale, never panic, and never record a sale it refused.
func FuzzSaleBody(f *testing.F) {
	for _, s := range []string{sale1, `{}`, `{"id":"x","lines":[]}`, `{"id":"x","lines":[{"no":1,"sku":"a","quantity":-1,"unit_price":1}]}`,
		`{"id":"y","member":"M00000017","lines":[{"no":1,"sku":"a","quantity":1,"unit_price":9223372036854775807}]}`, `[`, "\x00\xff"} {
		f.Add(s)
	}
	e := setup(f)
	f.Fuzz(func(t *testing.T, body string) {
		before := e.stats(t)
		req := httptest.NewRequest("POST", "/v1/sales", strings.NewReader(body))
		req.RemoteAddr = local
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("non-JSON answer %d %q", rec.Code, rec.Body.String())
		}
		if rec.Code >= 300 {
			if !strings.Contains(rec.Body.String(), `"code"`) {
				t.Fatalf("error without code: %q", rec.Body.String())
			}
			after := e.stats(t)
			if after.Sales != before.Sales || after.Events != before.Events {
				t.Fatalf("refused request changed the ledger: %d %q", rec.Code, rec.Body.String())
			}
		}
	})
}
