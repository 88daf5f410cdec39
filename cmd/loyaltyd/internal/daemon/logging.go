package daemon

import (
	"io"
	"log/slog"
	"strings"

	"github.com/loyalty-terminal/loyalty/device/cardsafe"
)

// NewLogger returns the daemon's logger: text (default) or JSON at the given
// level. Under journald (JOURNAL_STREAM set) timestamps are left out, since
// the journal stamps every line itself.
func NewLogger(w io.Writer, level, format string, journal bool) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	// Card numbers are masked in every message and value: the last line of
	// defence behind the checks at the doors (device/cardsafe).
	ho := &slog.HandlerOptions{Level: lv, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if journal && len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return cardsafe.ReplaceAttr(groups, a)
	}}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}
