// Package pionlog routes pion's logs (ICE, DTLS, TURN, …) into zap. pion's
// Info level narrates every candidate, state change and TURN request, so it
// becomes zap Debug; Trace is dropped.
package pionlog

import (
	"github.com/pion/logging"
	"go.uber.org/zap"
)

// Factory is a pion logging.LoggerFactory writing to a zap logger, with the
// pion scope as a field.
type Factory struct {
	Log *zap.Logger
	// Demote lowers pion's Warn to Debug and Error to Warn. A server closes
	// transports all day, and pion warns about every stream it finds closed;
	// operators should not read that as trouble.
	Demote bool
}

// NewLogger implements logging.LoggerFactory.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return leveled{s: f.Log.With(zap.String("scope", scope)).Sugar(), demote: f.Demote}
}

type leveled struct {
	s      *zap.SugaredLogger
	demote bool
}

func (l leveled) Trace(string)              {}
func (l leveled) Tracef(string, ...any)     {}
func (l leveled) Debug(msg string)          { l.s.Debug(msg) }
func (l leveled) Debugf(f string, a ...any) { l.s.Debugf(f, a...) }
func (l leveled) Info(msg string)           { l.s.Debug(msg) }
func (l leveled) Infof(f string, a ...any)  { l.s.Debugf(f, a...) }

func (l leveled) Warn(msg string) {
	if l.demote {
		l.s.Debug(msg)
		return
	}
	l.s.Warn(msg)
}

func (l leveled) Warnf(f string, a ...any) {
	if l.demote {
		l.s.Debugf(f, a...)
		return
	}
	l.s.Warnf(f, a...)
}

func (l leveled) Error(msg string) {
	if l.demote {
		l.s.Warn(msg)
		return
	}
	l.s.Error(msg)
}

func (l leveled) Errorf(f string, a ...any) {
	if l.demote {
		l.s.Warnf(f, a...)
		return
	}
	l.s.Errorf(f, a...)
}
