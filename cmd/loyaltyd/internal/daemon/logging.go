package daemon

import (
	"io"
	"log/slog"
	"strings"
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
	ho := &slog.HandlerOptions{Level: lv}
	if journal {
		ho.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}
