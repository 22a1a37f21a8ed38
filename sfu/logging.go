package sfu

import (
	"github.com/pion/logging"
	"go.uber.org/zap"
)

// zapLoggerFactory routes pion's logs into the server's zap logger. pion's Info
// and Warn are chatty about normal life-cycle steps (closing transports warns
// about closed streams), so they go to debug; pion's errors are warnings here.
type zapLoggerFactory struct{ l *zap.Logger }

func (f zapLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return zapLeveled{f.l.Named(scope).WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

type zapLeveled struct{ s *zap.SugaredLogger }

func (z zapLeveled) Trace(msg string)                  {}
func (z zapLeveled) Tracef(format string, args ...any) {}
func (z zapLeveled) Debug(msg string)                  { z.s.Debug(msg) }
func (z zapLeveled) Debugf(format string, args ...any) { z.s.Debugf(format, args...) }
func (z zapLeveled) Info(msg string)                   { z.s.Debug(msg) }
func (z zapLeveled) Infof(format string, args ...any)  { z.s.Debugf(format, args...) }
func (z zapLeveled) Warn(msg string)                   { z.s.Debug(msg) }
func (z zapLeveled) Warnf(format string, args ...any)  { z.s.Debugf(format, args...) }
func (z zapLeveled) Error(msg string)                  { z.s.Warn(msg) }
func (z zapLeveled) Errorf(format string, args ...any) { z.s.Warnf(format, args...) }
