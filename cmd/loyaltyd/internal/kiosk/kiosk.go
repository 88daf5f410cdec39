package kiosk

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sync"
	"time"
)

//go:embed static
var static embed.FS

// Options configures a Hub. Zero values mean the defaults.
type Options struct {
	// Language is the page language when neither the member nor the URL
	// says otherwise: "en" (default), "he" or "bg".
	Language string
	// KeepAlive is the interval of SSE comment lines that keep idle
	// connections open through proxies; default 15s.
	KeepAlive time.Duration
	// MaxClients bounds concurrent SSE clients; default 16.
	MaxClients int
	// Unit is the number of minor units per currency unit (100 for cents,
	// 1 for a currency without minor units); the page shows amounts with
	// that many decimals. Default 100.
	Unit int64
	// Currency is shown after amounts, e.g. "₪" or "лв"; default none.
	Currency string
}

// Decimals is the number of decimal digits amounts in minor units of this
// unit are shown with: 100 -> 2, 1000 -> 3, 1 -> 0.
func Decimals(unit int64) int {
	n := 0
	for unit >= 10 {
		unit /= 10
		n++
	}
	return n
}

// Hub fans the latest view out to every connected page.
type Hub struct {
	o       Options
	mu      sync.Mutex
	latest  []byte
	version uint64
	subs    map[chan []byte]struct{}
	done    chan struct{} // closed by Close: live streams end
	closed  bool
}

// New returns a hub with an empty view.
func New(o Options) *Hub {
	if o.Language == "" {
		o.Language = "en"
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 16
	}
	if o.Unit <= 0 {
		o.Unit = 100
	}
	return &Hub{o: o, latest: []byte("{}"), subs: map[chan []byte]struct{}{}, done: make(chan struct{})}
}

// Close ends every live stream and refuses new ones (503), so a server
// shutting down is not held by open kiosk pages (an SSE response never
// ends by itself). The page's EventSource reconnects to the next daemon.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// Publish sends v (marshalled as JSON) to every page. A slow page never
// blocks the caller: it misses intermediate views and gets the latest.
func (h *Hub) Publish(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("kiosk publish: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.latest = b
	h.version++
	for c := range h.subs {
		select {
		case c <- b:
		default:
			// drop the stale queued view, queue the newest
			select {
			case <-c:
			default:
			}
			select {
			case c <- b:
			default:
			}
		}
	}
	return nil
}

// Clients returns the number of connected pages.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Handler serves "/" (the page), "/events" (SSE) and "/state" (JSON).
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(sub, "index.html")
		if err != nil {
			http.Error(w, "page missing", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"language": h.o.Language, "decimals": Decimals(h.o.Unit), "currency": h.o.Currency})
	})
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		b := h.latest
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /events", h.serveEvents)
	return mux
}

func (h *Hub) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	c := make(chan []byte, 1)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if len(h.subs) >= h.o.MaxClients {
		h.mu.Unlock()
		http.Error(w, "too many kiosk pages", http.StatusServiceUnavailable)
		return
	}
	c <- h.latest
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	fmt.Fprint(w, "retry: 1000\n\n")
	fl.Flush()
	tk := time.NewTicker(h.o.KeepAlive)
	defer tk.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case b := <-c:
			if _, err := fmt.Fprintf(w, "event: view\ndata: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
		case <-tk.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
