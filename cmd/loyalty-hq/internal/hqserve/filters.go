package hqserve

import (
	"fmt"
	"strings"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// checkFilter refuses an events subscription head office cannot decode:
// the topic root names the protocol version this build speaks
// (protocol.Root, docs/protocol.md "Evolving the protocol"), so a filter
// under another root would subscribe to messages that are all dropped as
// "unknown topic". A shared subscription ("$share/<group>/...") is allowed
// around a valid filter.
func checkFilter(f string) error {
	rest := f
	if strings.HasPrefix(rest, "$share/") {
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) < 3 || parts[1] == "" {
			return fmt.Errorf("%q: a shared subscription is $share/<group>/%s/+/+/events", f, protocol.Root)
		}
		rest = parts[2]
	}
	levels, ok := strings.CutPrefix(rest, protocol.Root+"/")
	if !ok {
		return fmt.Errorf("%q is not under %s, the protocol version this head office speaks (docs/protocol.md, \"Upgrade order\")", f, protocol.Root)
	}
	l := strings.Split(levels, "/")
	if len(l) != 3 || l[2] != protocol.KindEvents || l[0] == "" || l[1] == "" || strings.Contains(levels, "#") {
		return fmt.Errorf("%q is not an events filter; use %s/<store or +>/<register or +>/events", f, protocol.Root)
	}
	return nil
}
