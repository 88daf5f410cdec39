package hqserve

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

// FetchSnapshot downloads a consistent copy of the running serve's bbolt
// store (GET /snapshot on status_addr, with the status token when one is
// configured) into a new temporary file of mode 0600, for report and
// contacts. cleanup removes the file.
func FetchSnapshot(ctx context.Context, cfg Config) (path string, cleanup func(), err error) {
	host, port, err := net.SplitHostPort(cfg.StatusAddr)
	if err != nil {
		return "", nil, fmt.Errorf("status_addr %q: %w", cfg.StatusAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/snapshot", nil)
	if err != nil {
		return "", nil, err
	}
	if cfg.StatusTokenFile != "" {
		token, err := cfg.statusToken()
		if err != nil {
			return "", nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("is loyalty-hq serve running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("GET /snapshot: %s", resp.Status)
	}
	f, err := os.CreateTemp("", "loyalty-hq-snapshot-*.db") // CreateTemp makes it 0600
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.Remove(f.Name()) }
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		cleanup()
		return "", nil, fmt.Errorf("GET /snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nil, err
	}
	return f.Name(), cleanup, nil
}
