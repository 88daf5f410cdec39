package hq

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// Head office records which of its keys signed each config document,
// catalogue piece and rule set it recorded (docs/operations.md
// "Recovering from a leaked signing key"): beside the record of kind, a
// record of kind signedKind(kind, key) for every key seen signing it. At
// start, a recorded kind that only keys no longer in Options.Keys signed
// is forgotten (ForgetConfig): its rule set leaves the policy, and its
// version no longer holds back what head office publishes under its new
// key. The keys pinned at the last start are recorded too (pinnedKind):
// when one of them is gone, a kind recorded by an earlier release (no
// signer recorded) counts as signed by it.

const (
	signedPrefix = "signed-by/"
	pinnedKind   = "pinned-keys"
)

// Documents are the recorded config documents, rule sets and catalogue
// pieces among docs, without head office's record of the keys that
// signed them (GET /configs).
func Documents(docs []hqstore.ConfigDoc) []hqstore.ConfigDoc {
	out := make([]hqstore.ConfigDoc, 0, len(docs))
	for _, d := range docs {
		if d.Kind != pinnedKind && !strings.HasPrefix(d.Kind, signedPrefix) {
			out = append(out, d)
		}
	}
	return out
}

// signedKind is the kind recording that key signed the document of kind.
func signedKind(kind, key string) string { return signedPrefix + key + "/" + kind }

// recordSigned records that key signed the document recorded as kind at
// version (ErrStaleConfig: already recorded).
func (s *Service) recordSigned(kind string, version uint64, key string) {
	if key == "" {
		return
	}
	if err := recordSignedIn(s.st, kind, version, key); err != nil {
		s.log.Error("record which key signed a config document", "kind", kind, "key", key, "err", err)
	}
}

func recordSignedIn(r Recorder, kind string, version uint64, key string) error {
	b, err := json.Marshal(struct {
		Key string `json:"key"`
	}{key})
	if err != nil {
		return err
	}
	err = r.RecordConfig(signedKind(kind, key), version, b)
	if err != nil && !errors.Is(err, hqstore.ErrStaleConfig) {
		return err
	}
	return nil
}

// forgetUnpinned forgets every recorded kind that only keys no longer
// pinned signed (and, after a key was removed, every kind with no signer
// recorded), then records the keys pinned now.
func (s *Service) forgetUnpinned() error {
	docs, err := s.st.Configs()
	if err != nil {
		return fmt.Errorf("config record: %w", err)
	}
	now := slices.Sorted(slices.Values(s.opts.Keys.IDs()))
	signers := map[string][]string{}
	var before struct {
		Keys []string `json:"keys"`
	}
	var pinnedVersion uint64
	for _, d := range docs {
		if rest, ok := strings.CutPrefix(d.Kind, signedPrefix); ok {
			if key, kind, ok := strings.Cut(rest, "/"); ok {
				signers[kind] = append(signers[kind], key)
			}
		}
		if d.Kind == pinnedKind {
			pinnedVersion = d.Version
			if err := json.Unmarshal(d.Doc, &before); err != nil {
				s.log.Warn("recorded pinned keys unreadable", "err", err)
			}
		}
	}
	rotated := slices.ContainsFunc(before.Keys, func(k string) bool { return !slices.Contains(now, k) })
	for _, d := range docs {
		if d.Kind == pinnedKind || strings.HasPrefix(d.Kind, signedPrefix) {
			continue
		}
		keys := signers[d.Kind]
		trusted := slices.ContainsFunc(keys, s.opts.Keys.Pinned)
		if trusted || len(keys) == 0 && !rotated {
			continue
		}
		if err := s.st.ForgetConfig(d.Kind); err != nil {
			return fmt.Errorf("forget %s: %w", d.Kind, err)
		}
		for _, k := range keys {
			if err := s.st.ForgetConfig(signedKind(d.Kind, k)); err != nil {
				return fmt.Errorf("forget %s: %w", d.Kind, err)
			}
		}
		signed := strings.Join(keys, ",")
		if signed == "" {
			signed = "a key pinned before (not recorded)"
		}
		s.log.Warn("recorded config forgotten: signed by a key no longer pinned (its rule set leaves the policy; publish-config may publish any version)",
			"kind", d.Kind, "version", d.Version, "signed_by", signed)
	}
	if !slices.Equal(before.Keys, now) && len(now) > 0 {
		b, err := json.Marshal(struct {
			Keys []string `json:"keys"`
		}{now})
		if err != nil {
			return err
		}
		if err := s.st.RecordConfig(pinnedKind, pinnedVersion+1, b); err != nil && !errors.Is(err, hqstore.ErrStaleConfig) {
			return fmt.Errorf("record pinned keys: %w", err)
		}
	}
	return nil
}
