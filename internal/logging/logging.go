// Package logging builds ramd's structured loggers: JSON lines with the keys
// timestamp, level, component and message, as in the original RAMD design,
// or the same keys as key=value text for a terminal; written to stderr or
// to a file that can be reopened after logrotate moved it (see File).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Formats are the values of [logging] format.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// ParseLevel maps debug|info|warn|error to a slog level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logging: unknown log level %q (want debug, info, warn or error)", s)
}

// New returns a JSON-lines logger writing to w. Use
// logger.With("component", "mesh") for each component.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, options(level)))
}

// NewFormat returns a logger writing format ("json", the default when
// empty, or "text") to w. Both formats carry the same keys, so
// `grep component=election` works on text and `grep '"component":"election"'`
// on JSON.
func NewFormat(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	switch strings.ToLower(format) {
	case "", FormatJSON:
		return New(w, level), nil
	case FormatText:
		return slog.New(slog.NewTextHandler(w, options(level))), nil
	}
	return nil, fmt.Errorf("logging: unknown log format %q (want json or text)", format)
}

// options renames slog's time/msg keys to ramd's timestamp/message and
// writes levels in lower case.
func options(level slog.Leveler) *slog.HandlerOptions {
	return &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				a.Key = "timestamp"
			case slog.MessageKey:
				a.Key = "message"
			case slog.LevelKey:
				a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
			}
			return a
		},
	}
}
