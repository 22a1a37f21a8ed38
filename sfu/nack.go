package sfu

import "slices"

// lossTracker notices gaps in one publisher stream and asks the publisher to
// resend (RFC 4585 §6.2.1), as a receiver would: as soon as a gap shows, then
// again every nackRetry, up to nackTries times, while the packet is young
// enough to be useful. It belongs to the stream's ingest goroutine.
type lossTracker struct {
	started bool
	highest uint16
	missing []missingSeq // unsorted, at most maxMissing
}

type missingSeq struct {
	seq   uint16
	since int64 // first noticed, ns since the epoch
	last  int64 // last NACKed
	tries uint8
}

const (
	maxMissing = 256
	nackTries  = 5
	// nackRetry is the pause before asking again: a little more than a
	// round trip on the networks calls run over.
	nackRetry = 40e6 // 40 ms in ns
	// nackMaxAge drops requests for packets a jitter buffer has given up on.
	nackMaxAge = 1e9
	// maxGap: a larger jump is a new sequence space (a restarted encoder),
	// not loss.
	maxGap = 512
)

func (l *lossTracker) arrived(seq uint16, now int64) {
	if !l.started {
		l.started, l.highest = true, seq
		if l.missing == nil {
			l.missing = make([]missingSeq, 0, maxMissing)
		}
		return
	}
	if !seqNewer(seq, l.highest) {
		l.missing = slices.DeleteFunc(l.missing, func(m missingSeq) bool { return m.seq == seq })
		return
	}
	gap := seq - l.highest - 1
	if gap >= maxGap {
		l.missing = l.missing[:0]
	} else {
		for s := l.highest + 1; s != seq; s++ {
			if len(l.missing) == maxMissing {
				l.missing = l.missing[:copy(l.missing, l.missing[1:])] // forget the oldest
			}
			l.missing = append(l.missing, missingSeq{seq: s, since: now})
		}
	}
	l.highest = seq
}

// due appends to out the sequence numbers to NACK now and drops the ones
// that are too old or asked for too often; out comes back sorted.
func (l *lossTracker) due(now int64, out []uint16) []uint16 {
	keep := l.missing[:0]
	for _, m := range l.missing {
		if m.tries >= nackTries || now-m.since > nackMaxAge {
			continue
		}
		if m.tries == 0 || now-m.last >= nackRetry {
			m.tries++
			m.last = now
			out = append(out, m.seq)
		}
		keep = append(keep, m)
	}
	l.missing = keep
	slices.SortFunc(out, func(a, b uint16) int {
		switch {
		case a == b:
			return 0
		case seqNewer(b, a):
			return -1
		}
		return 1
	})
	return out
}

func (l *lossTracker) pending() bool { return len(l.missing) > 0 }
