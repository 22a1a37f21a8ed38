// Package logging builds the server's zap logger: structured logs on stdout
// (read with the container runtime's logs), JSON by default and a plain
// console format for --dev, with a level that can be changed while running.
package logging

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger writing to w (os.Stdout if nil) at level (debug,
// info, warn, error) in format "json" (zap's production encoder with ISO8601
// times, one object per line) or "console" (zap's development encoder,
// uncoloured so it stays readable when piped to a file).
//
// The returned AtomicLevel controls the logger at run time: SetLevel, or
// mount it as an http.Handler (GET returns {"level":"info"}, PUT with
// {"level":"debug"} changes it). New mounts nothing; the caller puts it on
// the API listener, behind the same address and secret checks as the API.
//
// There is no sampling: hot paths (per packet) throttle their own logs, and
// dropping control-plane lines would hide events during load tests.
// Errors carry a stack trace. Callers Sync the logger before exiting.
func New(level, format string, w zapcore.WriteSyncer) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, zap.AtomicLevel{}, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	enc, err := encoder(format)
	if err != nil {
		return nil, zap.AtomicLevel{}, err
	}
	if w == nil {
		w = os.Stdout
	}
	atom := zap.NewAtomicLevelAt(lvl)
	// Lock: zap may write from many goroutines, and files make no promise
	// that concurrent writes stay whole lines.
	core := zapcore.NewCore(enc, zapcore.Lock(w), atom)
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel)), atom, nil
}

func encoder(format string) (zapcore.Encoder, error) {
	switch format {
	case "json":
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder // readable and sortable, unlike epoch seconds
		return zapcore.NewJSONEncoder(cfg), nil
	case "console":
		cfg := zap.NewDevelopmentEncoderConfig() // plain capital levels, no colour codes
		return zapcore.NewConsoleEncoder(cfg), nil
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
}
