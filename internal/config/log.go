package config

import (
	"io"
	"log/slog"
)

// LogConfig configures log/slog output on stderr.
type LogConfig struct {
	// Format is "json" (default) or "text".
	Format string `yaml:"format"`
	// Level is "debug", "info" (default), "warn" or "error".
	Level string `yaml:"level"`
}

// Logger returns a logger writing to w in c's format at c's level; an empty
// or unknown level is info, any format but "text" is JSON (callers validate
// the configuration first).
func (c LogConfig) Logger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
