package hqserve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// Record is head office's record of the config documents in force, for
// publish-config and republish-config, with the store to record into
// when this process could open it (nil while `serve` holds it: serve
// records what it sees on the broker).
type Record struct {
	Docs     hq.Record
	Recorder hq.Recorder
	From     string // where the record was read: the store file or serve's status page
	close    func() error
}

// Close releases the store when Record opened it.
func (r *Record) Close() error {
	if r.close == nil {
		return nil
	}
	return r.close()
}

// OpenRecord reads head office's record: from PostgreSQL when that is the
// store; else from the store file when no `serve` holds it (it is then also where what is published gets
// recorded), else from the running serve's status page (GET /configs on
// status_addr, with the status token when one is configured). When
// neither can be read it fails with hq.ErrNoRecord: nothing may be
// published then, since it could be older than what is in force.
func (c Config) OpenRecord(ctx context.Context) (*Record, error) {
	if c.Postgres.DSNFile != "" {
		// PostgreSQL serves serve and this command at once.
		st, err := OpenStore(c, false)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", hq.ErrNoRecord, err)
		}
		docs, err := st.Configs()
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("%w: %w", hq.ErrNoRecord, err)
		}
		return &Record{Docs: hq.RecordOf(docs), Recorder: st, From: "postgres", close: st.Close}, nil
	}
	if _, err := os.Stat(c.Store); errors.Is(err, os.ErrNotExist) {
		// No store yet: head office has never recorded anything.
		return &Record{Docs: hq.Record{}, From: c.Store + " (not created yet)"}, nil
	}
	st, err := hqstore.Open(c.Store, &hqstore.Options{LockTimeout: 500 * time.Millisecond, OfflineRedeemLimit: c.offlineLimit()})
	if err == nil {
		docs, err := st.Configs()
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("%w: %s: %w", hq.ErrNoRecord, c.Store, err)
		}
		return &Record{Docs: hq.RecordOf(docs), Recorder: st, From: c.Store, close: st.Close}, nil
	}
	if !errors.Is(err, hqstore.ErrLocked) {
		return nil, fmt.Errorf("%w: %s: %w", hq.ErrNoRecord, c.Store, err)
	}
	if c.StatusAddr == "off" {
		return nil, fmt.Errorf("%w: serve holds %s and its status page is off (status_addr); enable it or stop serve", hq.ErrNoRecord, c.Store)
	}
	docs, err := c.fetchConfigs(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: serve holds %s and its status page did not answer: %w", hq.ErrNoRecord, c.Store, err)
	}
	return &Record{Docs: hq.RecordOf(docs), From: "http://" + c.StatusAddr + "/configs"}, nil
}

func (c Config) fetchConfigs(ctx context.Context) ([]hqstore.ConfigDoc, error) {
	tok, err := c.statusToken()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.StatusAddr+"/configs", nil)
	if err != nil {
		return nil, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET /configs: %s: %s", resp.Status, b)
	}
	var docs []hqstore.ConfigDoc
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<30)).Decode(&docs); err != nil {
		return nil, fmt.Errorf("GET /configs: %w", err)
	}
	return docs, nil
}
