package hq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	stdsync "sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// Record is head office's record of the documents in force, by kind (the
// topic: a config topic or a catalogue piece topic), as `serve` keeps it
// in its store (hqstore RecordConfig / Configs, the status page's
// /configs).
type Record map[string]hqstore.ConfigDoc

// RecordOf indexes recorded documents by kind.
func RecordOf(docs []hqstore.ConfigDoc) Record {
	r := make(Record, len(docs))
	for _, d := range docs {
		r[d.Kind] = d
	}
	return r
}

// Recorder records what was published (hqstore's RecordConfig).
type Recorder interface {
	RecordConfig(kind string, version uint64, doc json.RawMessage) error
}

// PublishOptions tunes Publish. A nil *PublishOptions publishes without
// consulting a record (tests and PublishConfig).
type PublishOptions struct {
	// Record is head office's record; a document whose version is not
	// above the recorded one for its topic is refused (ErrStaleConfig),
	// whatever the broker holds. RecordRead says the record was read
	// (an empty one is a head office that never published).
	Record     Record
	RecordRead bool
	// Republish allows the recorded version itself (republishing what is
	// in force after a broker lost it).
	Republish bool
	// Recorder, when set, records every document published (pieces
	// first, then the document) after the broker's PUBACK.
	Recorder Recorder
	// PieceBytes bounds each catalogue piece (default and most
	// protocol.MaxPieceSize).
	PieceBytes int
}

// Published says what Publish sent.
type Published struct {
	Topic   string
	Version uint64
	Pieces  int // catalogue pieces (0: catalogue inside the document)
	Cleared int // leftover pieces of an earlier version cleared
}

// docSet is one document ready to publish: its topic, its encoded form
// and, for a catalogue in pieces, the encoded pieces.
type docSet struct {
	cfg    protocol.Config
	topic  string
	doc    []byte
	pieces [][]byte
}

// prepare encodes cfg; a store document too large for one message gets
// its catalogue cut into pieces (protocol.SplitCatalogue), which a chain
// document cannot have.
func prepare(cfg protocol.Config, pieceBytes int) (docSet, bool, error) {
	ds := docSet{cfg: cfg, topic: ConfigTopic(cfg)}
	doc, err := protocol.EncodeConfig(cfg)
	if err == nil && len(doc) <= protocol.MaxPieceSize {
		ds.doc = doc
		return ds, false, nil
	}
	if cfg.Scope != protocol.ScopeStore || len(cfg.Catalogue) == 0 {
		if err == nil {
			return ds, false, nil
		}
		return ds, false, fmt.Errorf("%w (a catalogue this large goes in a store document, which sends it in pieces)", err)
	}
	pieces, m, err := protocol.SplitCatalogue(cfg.Store, cfg.ConfigVersion, cfg.Catalogue, pieceBytes)
	if err != nil {
		return ds, false, err
	}
	cfg.Catalogue, cfg.CataloguePieces = nil, m
	if ds.doc, err = protocol.EncodeConfig(cfg); err != nil {
		return ds, false, err
	}
	ds.cfg, ds.pieces = cfg, pieces
	return ds, true, nil
}

// PublishConfig signs cfg and publishes it retained; see Publish.
func PublishConfig(ctx context.Context, conn Conn, signer *signing.Signer, cfg protocol.Config) error {
	_, err := Publish(ctx, conn, signer, cfg, nil)
	return err
}

// Publish signs cfg with signer and publishes it retained (QoS 1), after
// checking that its version is newer than head office's record
// (o.Record) and than the retained document on the broker, and waits for
// the broker's PUBACKs. A store document whose catalogue does not fit one
// message is sent as pieces first (each signed, retained on
// loyalty/v1/<store>/catalogue/<i>), then the document naming their
// digests; pieces an earlier version left beyond the new count are
// cleared. A retained document that signer's key did not sign (a forgery,
// or one signed before a rotation) does not hold a newer version back. It
// uses its own short-lived connection (conn.ClientID + "-config").
func Publish(ctx context.Context, conn Conn, signer *signing.Signer, cfg protocol.Config, o *PublishOptions) (Published, error) {
	var opt PublishOptions
	if o != nil {
		opt = *o
	}
	if signer == nil {
		return Published{}, fmt.Errorf("publish config: no signing key: %w", ErrOptions)
	}
	ds, _, err := prepare(cfg, opt.PieceBytes)
	if err != nil {
		return Published{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return publishSet(ctx, conn, signer, ds, opt)
}

// checkRecord refuses a version not above head office's record.
func checkRecord(ds docSet, o PublishOptions) error {
	rec, ok := o.Record[ds.topic]
	if !ok {
		return nil
	}
	v := ds.cfg.ConfigVersion
	if v < rec.Version || v == rec.Version && !o.Republish {
		return fmt.Errorf("%w: version %d, head office's record holds %d on %s (whatever the broker holds; `loyalty-hq republish-config` republishes what is in force)",
			ErrStaleConfig, v, rec.Version, ds.topic)
	}
	return nil
}

func publishSet(ctx context.Context, conn Conn, signer *signing.Signer, ds docSet, o PublishOptions) (Published, error) {
	if err := checkRecord(ds, o); err != nil {
		return Published{}, err
	}
	own, err := signing.NewKeyring(signer.Public())
	if err != nil {
		return Published{}, err
	}
	id := conn.ClientID
	if id == "" {
		id = "loyalty-hq"
	}
	wait := conn.waitTimeout()
	c := mqtt.NewClient(clientOptions(conn, id+"-config").SetCleanSession(true).SetAutoReconnect(false))
	if t := c.Connect(); !t.WaitTimeout(wait) {
		return Published{}, fmt.Errorf("publish config: connect: %w", ErrTimeout)
	} else if t.Error() != nil {
		return Published{}, fmt.Errorf("publish config: connect: %w", t.Error())
	}
	defer c.Disconnect(250)

	prev, err := retained(ctx, c, ds.topic, wait)
	if err != nil {
		return Published{}, err
	}
	prevPieces := 0
	if prevDoc, err := own.Open(ds.topic, prev, protocol.MaxConfigSize+signing.Overhead); len(prev) > 0 && err == nil {
		pt, _ := protocol.ParseTopic(ds.topic)
		p, err := protocol.DecodeConfig(prevDoc, pt)
		if err == nil {
			if p.ConfigVersion > ds.cfg.ConfigVersion || p.ConfigVersion == ds.cfg.ConfigVersion && !o.Republish {
				return Published{}, fmt.Errorf("%w: version %d, broker holds %d", ErrStaleConfig, ds.cfg.ConfigVersion, p.ConfigVersion)
			}
			if p.CataloguePieces != nil {
				prevPieces = p.CataloguePieces.Count()
			}
		}
	}
	seal := func(topic string, doc []byte) ([]byte, error) {
		b, err := signer.Seal(topic, doc)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return b, nil
	}
	// Pieces first, so a register that sees the document finds them.
	var toks []mqtt.Token
	for i, p := range ds.pieces {
		b, err := seal(protocol.CataloguePieceTopic(ds.cfg.Store, i), p)
		if err != nil {
			return Published{}, err
		}
		toks = append(toks, c.Publish(protocol.CataloguePieceTopic(ds.cfg.Store, i), 1, true, b))
		if len(toks) >= 8 { // a small window of pieces in flight
			if err := waitAll(toks, wait); err != nil {
				return Published{}, err
			}
			toks = toks[:0]
		}
	}
	if err := waitAll(toks, wait); err != nil {
		return Published{}, err
	}
	payload, err := seal(ds.topic, ds.doc)
	if err != nil {
		return Published{}, err
	}
	if err := waitAll([]mqtt.Token{c.Publish(ds.topic, 1, true, payload)}, wait); err != nil {
		return Published{}, err
	}
	res := Published{Topic: ds.topic, Version: ds.cfg.ConfigVersion, Pieces: len(ds.pieces)}
	// Leftover pieces of the previous version: cleared (an empty retained
	// message), after the document that no longer names them.
	toks = toks[:0]
	for i := len(ds.pieces); i < prevPieces; i++ {
		toks = append(toks, c.Publish(protocol.CataloguePieceTopic(ds.cfg.Store, i), 1, true, []byte{}))
		res.Cleared++
	}
	if err := waitAll(toks, wait); err != nil {
		return res, err
	}
	if o.Recorder != nil {
		key := signer.Public().ID()
		for i, p := range ds.pieces {
			if err := record(o.Recorder, protocol.CataloguePieceTopic(ds.cfg.Store, i), ds.cfg.ConfigVersion, p, key); err != nil {
				return res, err
			}
		}
		if err := record(o.Recorder, ds.topic, ds.cfg.ConfigVersion, ds.doc, key); err != nil {
			return res, err
		}
	}
	return res, nil
}

// record records doc as kind's version in force, and that key signed it
// (signedby.go).
func record(r Recorder, kind string, version uint64, doc []byte, key string) error {
	err := r.RecordConfig(kind, version, doc)
	if err == nil {
		err = recordSignedIn(r, kind, version, key)
	}
	if err != nil && !isStale(err) {
		return fmt.Errorf("published, but not recorded in head office's store: %w", err)
	}
	return nil
}

func isStale(err error) bool { return errors.Is(err, hqstore.ErrStaleConfig) }

// retained returns the retained message on topic ("" when none): mosquitto
// sends it right after the SUBACK; a short grace covers the round trip.
func retained(ctx context.Context, c mqtt.Client, topic string, wait time.Duration) ([]byte, error) {
	var mu stdsync.Mutex
	var current []byte
	got := make(chan struct{}, 1)
	t := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		if !m.Retained() {
			return
		}
		mu.Lock()
		current = m.Payload()
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if !t.WaitTimeout(wait) {
		return nil, fmt.Errorf("publish config: subscribe: %w", ErrTimeout)
	} else if t.Error() != nil {
		return nil, fmt.Errorf("publish config: subscribe: %w", t.Error())
	}
	select {
	case <-got:
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.Unsubscribe(topic)
	mu.Lock()
	defer mu.Unlock()
	return current, nil
}

func waitAll(toks []mqtt.Token, wait time.Duration) error {
	for _, t := range toks {
		if !t.WaitTimeout(wait) {
			return fmt.Errorf("publish config: %w", ErrTimeout)
		} else if t.Error() != nil {
			return fmt.Errorf("publish config: %w", t.Error())
		}
	}
	return nil
}

// Republish publishes again every document in head office's record, as
// recorded (signed afresh with signer), with its catalogue pieces: what
// is in force goes back on a broker that lost its retained messages. A
// document whose pieces the record lacks is not published (the error
// names it); the others are.
func Republish(ctx context.Context, conn Conn, signer *signing.Signer, rec Record) ([]Published, error) {
	if signer == nil {
		return nil, fmt.Errorf("republish config: no signing key: %w", ErrOptions)
	}
	kinds := make([]string, 0, len(rec))
	for k := range rec {
		if t, err := protocol.ParseTopic(k); err == nil && t.Kind == protocol.KindConfig {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	var out []Published
	var firstErr error
	for _, k := range kinds {
		ds, err := recorded(rec, k)
		if err == nil {
			var p Published
			p, err = publishSet(ctx, conn, signer, ds, PublishOptions{Record: rec, RecordRead: true, Republish: true})
			if err == nil {
				out = append(out, p)
				continue
			}
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("republish %s: %w", k, err)
		}
	}
	return out, firstErr
}

// recorded rebuilds the document set of kind from the record. A
// catalogue in pieces is reassembled from the recorded pieces of the
// document's version and cut again (a store backend may re-encode what it
// keeps, so the recorded bytes are not relied on).
func recorded(rec Record, kind string) (docSet, error) {
	d := rec[kind]
	t, err := protocol.ParseTopic(kind)
	if err != nil {
		return docSet{}, err
	}
	cfg, err := protocol.DecodeConfig(d.Doc, t)
	if err != nil {
		return docSet{}, fmt.Errorf("recorded document: %w", err)
	}
	m := cfg.CataloguePieces
	if m == nil {
		ds, _, err := prepare(cfg, 0)
		return ds, err
	}
	items := make([]protocol.Product, 0, m.Items)
	for i := range m.Digests {
		topic := protocol.CataloguePieceTopic(cfg.Store, i)
		r, ok := rec[topic]
		var p protocol.CataloguePiece
		if ok && r.Version == cfg.ConfigVersion {
			p, err = protocol.DecodePiece(r.Doc, cfg.Store, i)
		}
		if !ok || r.Version != cfg.ConfigVersion || err != nil || p.ConfigVersion != cfg.ConfigVersion || p.Count != m.Count() {
			return docSet{}, fmt.Errorf("%w: it lacks piece %d of %s version %d; publish the document again with a higher version (publish-config)", ErrNoRecord, i, kind, cfg.ConfigVersion)
		}
		items = append(items, p.Items...)
	}
	if len(items) != m.Items {
		return docSet{}, fmt.Errorf("%w: %d items recorded for %s version %d, the document says %d", ErrNoRecord, len(items), kind, cfg.ConfigVersion, m.Items)
	}
	cfg.CataloguePieces, cfg.Catalogue = nil, items
	ds, _, err := prepare(cfg, 0)
	return ds, err
}
