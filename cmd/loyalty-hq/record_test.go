package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestPublishConfigNeverGoesBack: head office published chain version 3
// and a store catalogue of 12,000 items (in pieces); the broker is rebuilt
// (stopped, its persistence file removed, started again), so it holds no
// retained document. publish-config of version 2 is refused, because head
// office's record (read from the running serve's status page, and with
// serve stopped from the store file) holds 3; nothing reaches the broker.
// republish-config puts what is in force back, and a fresh register takes
// version 3 and the 12,000-item catalogue, not version 2.
func TestPublishConfigNeverGoesBack(t *testing.T) {
	b := mosquittotest.Start(t, &mosquittotest.Options{Persistence: true})
	dir := t.TempDir()
	var out bytes.Buffer
	keyFile := filepath.Join(dir, "hq.key")
	if err := run(context.Background(), []string{"keys", "generate", "-out", keyFile}, &out, &out); err != nil {
		t.Fatal(err)
	}
	pub, err := signing.ParsePublicKey(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "hq.yaml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf("store: %s\nbroker: {url: %q, wait_timeout: 20s}\nsigning_key_file: %s\nstatus_addr: %s\nsummary_interval: -1s\n",
		filepath.Join(dir, "hq.db"), b.URL(), keyFile, anyStatusAddr)), 0o600)
	doc := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	chain := func(v int) string {
		return doc(fmt.Sprintf("chain-%d.yaml", v), fmt.Sprintf("version: %d\nrules:\n  version: %d\n  unit: 100\n  earn: {points_per_unit: %d}\n  rounding: floor\n  round_per: line\n", v, v, v))
	}
	var cat strings.Builder
	cat.WriteString("scope: store\nstore: s1\nversion: 5\ncatalogue:\n")
	const items = 12_000
	for i := range items {
		fmt.Fprintf(&cat, "  - {sku: \"A%06d\", name: \"Article number %d\", category: grocery, price: %d}\n", i, i, 100+i)
	}
	storeDoc := doc("store-5.yaml", cat.String())
	publish := func(path string) (string, error) {
		var o bytes.Buffer
		err := run(context.Background(), []string{"publish-config", "-config", cfgFile, path}, &o, &o)
		return o.String(), err
	}

	// serve runs and records what is published.
	statusAddr, stopServe := serveOn(t, cfgFile)
	recorded := func(kind string) uint64 {
		resp, err := http.Get("http://" + statusAddr + "/configs")
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		var docs []hqstore.ConfigDoc
		json.NewDecoder(resp.Body).Decode(&docs)
		for _, d := range docs {
			if d.Kind == kind {
				return d.Version
			}
		}
		return 0
	}
	for _, p := range []string{chain(2), chain(3), storeDoc} {
		if o, err := publish(p); err != nil {
			t.Fatalf("publish %s: %v\n%s", p, err, o)
		}
	}
	testkit.Eventually(t, 20*time.Second, "serve recording version 3 and the catalogue's pieces", func() bool {
		return recorded(protocol.ChainConfigTopic()) == 3 && recorded(protocol.StoreConfigTopic("s1")) == 5 &&
			recorded(protocol.CataloguePieceTopic("s1", 1)) == 5
	})
	if o, err := publish(chain(3)); err == nil || !strings.Contains(err.Error(), "not newer") {
		t.Fatalf("the same version again: %v %s", err, o)
	}

	// The broker is rebuilt: no retained documents any more.
	b.Stop()
	if err := os.Remove(filepath.Join(b.Dir(), "mosquitto.db")); err != nil {
		t.Fatalf("persistence file: %v", err)
	}
	b.Restart()
	if got := retainedOn(t, b.URL(), protocol.ChainConfigTopic()); got != nil {
		t.Fatalf("a rebuilt broker still holds %d bytes", len(got))
	}
	o, err := publish(chain(2))
	if err == nil || !strings.Contains(err.Error(), "head office's record holds 3") || !strings.Contains(err.Error(), "nothing was published") {
		t.Fatalf("version 2 over a rebuilt broker: %v\n%s", err, o)
	}
	if got := retainedOn(t, b.URL(), protocol.ChainConfigTopic()); got != nil {
		t.Fatal("the refused version reached the broker")
	}

	// With serve stopped the record is read from the store file.
	if err := stopServe(); err != nil {
		t.Fatal(err)
	}
	if o, err := publish(chain(2)); err == nil || !strings.Contains(err.Error(), "head office's record holds 3") {
		t.Fatalf("version 2 with serve stopped: %v\n%s", err, o)
	}

	// One command puts what is in force back.
	out.Reset()
	if err := run(context.Background(), []string{"republish-config", "-config", cfgFile}, &out, &out); err != nil {
		t.Fatalf("republish: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "republished config version 3 on loyalty/v1/config") ||
		!strings.Contains(out.String(), "republished config version 5 on loyalty/v1/s1/config (retained), catalogue in") {
		t.Fatalf("republish output:\n%s", out.String())
	}

	// A fresh register takes version 3 and the whole catalogue.
	keys, _ := signing.NewKeyring(pub)
	l := ledgertest.Open(t, &ledger.Options{Register: "r9"})
	up, err := uplink.New(l, &uplink.Options{Brokers: []string{b.URL()}, Store: "s1", Register: "r9", Keys: keys,
		OnConfig: func(ctx context.Context, c protocol.Config) error {
			_, err := l.ApplyConfig(ctx, ledger.ConfigDoc{Store: c.Scope == protocol.ScopeStore, Version: c.ConfigVersion, Rules: c.Rules})
			return err
		},
		OnPiecedConfig: func(ctx context.Context, c protocol.Config) (uplink.Pieces, error) {
			st, err := l.BeginPieced(ctx, ledger.PiecedConfig{Doc: ledger.ConfigDoc{Store: true, Version: c.ConfigVersion, Rules: c.Rules},
				Digests: c.CataloguePieces.Digests, Items: c.CataloguePieces.Items})
			return uplink.Pieces{Version: st.Version, Have: st.Have, Want: st.Want, Applied: st.Applied}, err
		},
		OnPiece: func(ctx context.Context, p protocol.CataloguePiece, digest string) (uplink.Pieces, error) {
			its := make([]ledger.Item, len(p.Items))
			for i, it := range p.Items {
				its[i] = ledger.Item{SKU: it.SKU, Name: it.Name, Price: it.Price, Category: it.Category}
			}
			st, err := l.StagePiece(ctx, p.ConfigVersion, p.Index, digest, its)
			return uplink.Pieces{Version: st.Version, Have: st.Have, Want: st.Want, Applied: st.Applied}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	upCtx, stopUp := context.WithCancel(context.Background())
	upDone := make(chan struct{})
	go func() { up.Run(upCtx); close(upDone) }()
	defer func() { stopUp(); <-upDone }()
	testkit.Eventually(t, 30*time.Second, "the fresh register taking chain 3 and store 5", func() bool {
		c := up.Status().Config
		return c.Chain == 3 && c.Store == 5
	})
	if l.RuleVersion() != 3 {
		t.Fatalf("rules version %d, want 3", l.RuleVersion())
	}
	for _, sku := range []string{"A000000", "A011999"} {
		if _, err := l.Item(sku); err != nil {
			t.Fatalf("item %s: %v", sku, err)
		}
	}
}

// retainedOn returns the retained message on topic (nil when none). The
// broker sends a topic's retained message as it takes the subscription;
// the client then publishes a marker to a topic of its own on the same
// connection, so the marker comes after any retained message: once it
// is in, a retained message that has not come is not there.
func retainedOn(t *testing.T, url, topic string) []byte {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("peek").SetAutoReconnect(false).SetOrderMatters(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(50)
	marker := "peek/marker"
	var retained []byte
	done := make(chan struct{})
	sub := func(topic string) {
		t.Helper()
		tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
			switch {
			case m.Topic() == marker:
				close(done)
			case m.Retained() && retained == nil:
				retained = m.Payload()
			}
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
	}
	sub(marker)
	sub(topic)
	if tok := c.Publish(marker, 1, false, "after the retained message"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish the marker: %v", tok.Error())
	}
	select {
	case <-done:
		return retained // written before done was closed, by the same handler goroutine
	case <-time.After(10 * time.Second):
		t.Fatal("the marker never came back")
		return nil
	}
}

// TestPublishConfigRecordInPostgres: with PostgreSQL as head office's
// store, publish-config reads the record there (serve may run on it at the
// same time) and refuses a version below it, over an empty broker.
func TestPublishConfigRecordInPostgres(t *testing.T) {
	s := pgtest.Need(t, pgSrv, pgErr)
	_, dsn, err := s.Schema()
	if err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(dsn, nil) // as a running serve holds it
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.RecordConfig(protocol.ChainConfigTopic(), 3, []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	b := mosquittotest.Start(t, nil)
	dir := t.TempDir()
	var out bytes.Buffer
	keyFile := filepath.Join(dir, "hq.key")
	if err := run(context.Background(), []string{"keys", "generate", "-out", keyFile}, &out, &out); err != nil {
		t.Fatal(err)
	}
	dsnFile := filepath.Join(dir, "hq.dsn")
	os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600)
	cfgFile := filepath.Join(dir, "hq.yaml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf("postgres: {dsn_file: %s}\nbroker: {url: %q}\nsigning_key_file: %s\n", dsnFile, b.URL(), keyFile)), 0o600)
	doc := func(v int) string {
		p := filepath.Join(dir, fmt.Sprintf("chain-%d.yaml", v))
		os.WriteFile(p, []byte(fmt.Sprintf("version: %d\ncatalogue:\n  - {sku: a, name: A, price: %d}\n", v, 100+v)), 0o600)
		return p
	}
	out.Reset()
	err = run(context.Background(), []string{"publish-config", "-config", cfgFile, doc(2)}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "head office's record holds 3") {
		t.Fatalf("version 2 under a record of 3: %v\n%s", err, out.String())
	}
	if got := retainedOn(t, b.URL(), protocol.ChainConfigTopic()); got != nil {
		t.Fatal("the refused version reached the broker")
	}
	out.Reset()
	if err := run(context.Background(), []string{"publish-config", "-config", cfgFile, doc(4)}, &out, &out); err != nil {
		t.Fatalf("version 4: %v\n%s", err, out.String())
	}
	docs, err := st.Configs()
	if err != nil {
		t.Fatal(err)
	}
	if r := hq.RecordOf(docs)[protocol.ChainConfigTopic()]; r.Version != 4 {
		t.Fatalf("recorded version %d after publishing 4", r.Version)
	}
}
