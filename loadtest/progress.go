package loadtest

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a one-line progress bar (carriage return, no newline until
// the end) so a person sees the run advance.
type progress struct {
	w        io.Writer
	total    int
	duration time.Duration

	mu         sync.Mutex
	joinedN    int
	mediaStart time.Time
	last       Point
	drawn      bool
	done       bool // the run is over: draw the bar full
}

const barWidth = 30

func newProgress(w io.Writer, total int, d time.Duration) *progress {
	return &progress{w: w, total: total, duration: d}
}

func (p *progress) joined() {
	p.mu.Lock()
	p.joinedN++
	p.drawLocked()
	p.mu.Unlock()
}

func (p *progress) mediaStarted() {
	p.mu.Lock()
	p.mediaStart = time.Now()
	p.drawLocked()
	p.mu.Unlock()
}

func (p *progress) update(pt Point) {
	p.mu.Lock()
	p.last = pt
	p.drawLocked()
	p.mu.Unlock()
}

func (p *progress) drawLocked() {
	if p.w == nil {
		return
	}
	var b strings.Builder
	if p.mediaStart.IsZero() {
		fmt.Fprintf(&b, "\rjoining %d/%d", p.joinedN, p.total)
	} else {
		el := min(time.Since(p.mediaStart), p.duration)
		if p.done {
			el = p.duration
		}
		n := int(float64(barWidth) * el.Seconds() / p.duration.Seconds())
		fmt.Fprintf(&b, "\r[%s%s] %3.0f/%.0fs  %d joined  rx %.1f Mb/s  loss %.2f%%",
			strings.Repeat("=", n), strings.Repeat(" ", barWidth-n), el.Seconds(), p.duration.Seconds(),
			p.joinedN, p.last.RxMbps, p.last.LossPercent)
		if p.last.ServerCPUPercent >= 0 {
			fmt.Fprintf(&b, "  server CPU %.0f%%", p.last.ServerCPUPercent)
		}
	}
	b.WriteString("\x1b[K") // clear the rest of the line
	_, _ = io.WriteString(p.w, b.String())
	p.drawn = true
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil && p.drawn {
		if !p.mediaStart.IsZero() {
			p.done = true
			p.drawLocked()
		}
		_, _ = io.WriteString(p.w, "\n")
	}
}
