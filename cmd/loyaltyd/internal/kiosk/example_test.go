package kiosk_test

import (
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/kiosk"
)

// The daemon publishes each checkout view; pages get it over /events and
// anyone can read the latest at /state.
func ExampleHub() {
	h := kiosk.New(kiosk.Options{Language: "he"})
	_ = h.Publish(map[string]any{"state": "points", "member": "דנה", "balance": 120})
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/state", nil))
	b, _ := io.ReadAll(rec.Body)
	fmt.Println(string(b))
	// Output: {"balance":120,"member":"דנה","state":"points"}
}
