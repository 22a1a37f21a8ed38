package web_test

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/orville/orville/internal/browsertest"
)

type rect struct{ X, Y, W, H float64 }

func (r rect) inside(o rect) bool {
	return r.X >= o.X-1 && r.Y >= o.Y-1 && r.X+r.W <= o.X+o.W+1 && r.Y+r.H <= o.Y+o.H+1
}

func (r rect) overlaps(o rect) bool {
	return r.X < o.X+o.W-1 && o.X < r.X+r.W-1 && r.Y < o.Y+o.H-1 && o.Y < r.Y+r.H-1
}

type pageLayout struct {
	Tiles       []rect  `json:"tiles"`
	Grid        rect    `json:"grid"`
	Controls    rect    `json:"controls"`
	Buttons     []rect  `json:"buttons"`
	Cols        int     `json:"cols"`
	ScrollWidth float64 `json:"scrollWidth"`
}

const layoutJS = `(() => {
  const r = (e) => { const b = e.getBoundingClientRect(); return { X: b.x, Y: b.y, W: b.width, H: b.height }; };
  return {
    tiles: [...document.querySelectorAll('#tiles .tile')].map(r),
    grid: r(document.getElementById('tiles')),
    controls: r(document.getElementById('controls')),
    buttons: [...document.querySelectorAll('#controls button:not([hidden])')].map(r),
    cols: Number(document.getElementById('tiles').dataset.cols),
    scrollWidth: document.documentElement.scrollWidth,
  };
})()`

// TestPageLayout: three people in a call, seen at 1920×1080 and at 360×740
// (a phone). Screenshots are taken and checked: three tiles, inside the
// window and the grid, not overlapping, filling a good share of it; video
// drawn where each tile is; the controls on screen and large enough to
// touch; nothing wider than the window. The screenshots are kept in
// $ORVILLE_SCREENSHOTS when it is set.
func TestPageLayout(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 27050, nil)
	call := s.createCall(t)
	alice, bob, carol := newBrowser(t, "alice", s), newBrowser(t, "bob", s), newBrowser(t, "carol", s)
	for _, b := range []*browser{alice, bob, carol} {
		b.navigate(s.callURL(s.namedToken(t, call, b.name, b.name), callSecret))
	}
	alice.waitStats(15*time.Second, "video from bob and carol", func(s pageStats) bool {
		b, c := s.track("bob", "video"), s.track("carol", "video")
		return b != nil && c != nil && b.FramesDecoded > 10 && c.FramesDecoded > 10
	})
	for _, vp := range []struct {
		name string
		w, h int64
		cols []int
	}{
		{"1920", 1920, 1080, []int{2, 3}},
		{"360", 360, 740, []int{1}},
	} {
		if err := chromedp.Do(alice.ctx, chromedp.EmulateViewport(vp.w, vp.h)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // layout, then a few video frames at the new size
		shot, err := chromedp.Run(alice.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if dir := os.Getenv("ORVILLE_SCREENSHOTS"); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, "page-"+vp.name+".png"), shot, 0o644)
		}
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); int64(b.Dx()) != vp.w || int64(b.Dy()) != vp.h {
			t.Fatalf("%s: screenshot is %v", vp.name, b)
		}
		l := mustEval[pageLayout](alice, layoutJS)
		window := rect{0, 0, float64(vp.w), float64(vp.h)}
		if len(l.Tiles) != 3 {
			t.Fatalf("%s: %d tiles, want 3: %+v", vp.name, len(l.Tiles), l)
		}
		colsOK := false
		for _, c := range vp.cols {
			colsOK = colsOK || l.Cols == c
		}
		if !colsOK {
			t.Errorf("%s: %d columns, want one of %v", vp.name, l.Cols, vp.cols)
		}
		area := 0.0
		for i, tr := range l.Tiles {
			area += tr.W * tr.H
			if !tr.inside(window) || !tr.inside(l.Grid) {
				t.Errorf("%s: tile %d %+v outside the window or the grid %+v", vp.name, i, tr, l.Grid)
			}
			for j := i + 1; j < len(l.Tiles); j++ {
				if tr.overlaps(l.Tiles[j]) {
					t.Errorf("%s: tiles %d and %d overlap: %+v %+v", vp.name, i, j, tr, l.Tiles[j])
				}
			}
			if tr.W < 0.4*float64(min(vp.w, 960)) {
				t.Errorf("%s: tile %d only %.0f px wide", vp.name, i, tr.W)
			}
			// The fake camera is green: the tile's middle must show video.
			c := img.At(int(tr.X+tr.W/2), int(tr.Y+tr.H*0.75))
			r, g, b, _ := c.RGBA()
			if g < 2*r || g < 2*b || g < 0x4000 {
				t.Errorf("%s: tile %d shows no video at its middle (rgb %d %d %d)", vp.name, i, r>>8, g>>8, b>>8)
			}
		}
		if frac := area / (l.Grid.W * l.Grid.H); frac < 0.35 {
			t.Errorf("%s: tiles fill %.0f%% of the grid, want at least 35%%", vp.name, 100*frac)
		}
		if !l.Controls.inside(window) || l.Controls.H == 0 {
			t.Errorf("%s: controls %+v not within the window", vp.name, l.Controls)
		}
		for i, b := range l.Buttons {
			if b.H < 36 || b.W < 36 || !b.inside(window) {
				t.Errorf("%s: button %d is %+v: too small to touch or off screen", vp.name, i, b)
			}
		}
		if l.ScrollWidth > float64(vp.w) {
			t.Errorf("%s: the page is %.0f px wide, more than the window", vp.name, l.ScrollWidth)
		}
		t.Logf("%s: %d columns, tiles %.0f×%.0f, %.0f%% of the grid", vp.name, l.Cols, l.Tiles[0].W, l.Tiles[0].H,
			100*area/(l.Grid.W*l.Grid.H))
	}
}
