package loadtest

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Plot geometry: three panels stacked, sharing the time axis.
const (
	plotWidth   = 960
	panelHeight = 200
	marginLeft  = 70
	marginRight = 20
	marginTop   = 30
	panelGap    = 40
	marginBot   = 40
)

var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colAxis       = color.RGBA{60, 60, 60, 255}
	colGrid       = color.RGBA{225, 225, 225, 255}
	colText       = color.RGBA{20, 20, 20, 255}
	colMedia      = color.RGBA{255, 244, 214, 255}
)

// series is one panel: a title, a unit and one value per timeline point.
type series struct {
	title string
	unit  string
	col   color.RGBA
	value func(Point) (float64, bool)
}

// WritePlot draws the report's timeline — received bitrate, loss and the
// server's CPU — as a PNG at path. It needs no plotting library: lines and
// the bitmap font go straight onto an image.RGBA.
func WritePlot(path string, rep *Report) error {
	img := renderPlot(rep)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("loadtest: plot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("loadtest: plot: %w", err)
	}
	return f.Close()
}

func renderPlot(rep *Report) *image.RGBA {
	panels := []series{
		{"received bitrate, all subscribers", "Mb/s", color.RGBA{31, 119, 180, 255},
			func(p Point) (float64, bool) { return p.RxMbps, true }},
		{"loss per second", "%", color.RGBA{214, 39, 40, 255},
			func(p Point) (float64, bool) { return p.LossPercent, true }},
		{"server CPU (100% = one core)", "%", color.RGBA{44, 160, 44, 255},
			func(p Point) (float64, bool) { return p.ServerCPUPercent, p.ServerCPUPercent >= 0 }},
	}
	h := marginTop + len(panels)*(panelHeight+panelGap) - panelGap + marginBot
	img := image.NewRGBA(image.Rect(0, 0, plotWidth, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{colBackground}, image.Point{}, draw.Src)

	s := rep.Scenario
	title := fmt.Sprintf("orville loadtest: %d call(s) x %d participants, %d audio / %d video publishers, %.0f s of media",
		s.Calls, s.Participants, s.AudioPublishers, s.VideoPublishers, s.DurationSeconds)
	text(img, marginLeft, 18, title)

	tMax := 1.0
	for _, p := range rep.Timeline {
		tMax = max(tMax, p.Seconds)
	}
	for i, sr := range panels {
		top := marginTop + i*(panelHeight+panelGap)
		r := image.Rect(marginLeft, top+14, plotWidth-marginRight, top+panelHeight)
		drawPanel(img, r, sr, rep, tMax)
	}
	return img
}

func drawPanel(img *image.RGBA, r image.Rectangle, sr series, rep *Report, tMax float64) {
	text(img, r.Min.X, r.Min.Y-4, sr.title+" ("+sr.unit+")")
	yMax := 0.0
	for _, p := range rep.Timeline {
		if v, ok := sr.value(p); ok {
			yMax = max(yMax, v)
		}
	}
	yMax = niceCeil(yMax)
	x := func(t float64) int { return r.Min.X + int(t/tMax*float64(r.Dx())) }
	y := func(v float64) int { return r.Max.Y - int(v/yMax*float64(r.Dy())) }

	// The media window (after everybody joined) is shaded.
	if rep.JoinPhaseSeconds < tMax {
		draw.Draw(img, image.Rect(x(rep.JoinPhaseSeconds), r.Min.Y, r.Max.X, r.Max.Y), &image.Uniform{colMedia}, image.Point{}, draw.Src)
	}
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		line(img, r.Min.X, y(v), r.Max.X, y(v), colGrid)
		label := fmt.Sprintf("%.3g", v)
		text(img, r.Min.X-8-7*len(label), y(v)+4, label)
	}
	step := niceCeil(tMax / 8)
	for t := 0.0; t <= tMax+1e-9; t += step {
		line(img, x(t), r.Max.Y, x(t), r.Max.Y+4, colAxis)
		label := fmt.Sprintf("%gs", t)
		text(img, x(t)-7*len(label)/2, r.Max.Y+17, label)
	}
	line(img, r.Min.X, r.Min.Y, r.Min.X, r.Max.Y, colAxis)
	line(img, r.Min.X, r.Max.Y, r.Max.X, r.Max.Y, colAxis)

	have := false
	var px, py int
	for _, p := range rep.Timeline {
		v, ok := sr.value(p)
		if !ok {
			have = false
			continue
		}
		cx, cy := x(p.Seconds), y(v)
		if have {
			line(img, px, py, cx, cy, sr.col)
			line(img, px, py+1, cx, cy+1, sr.col) // two pixels thick
		}
		px, py, have = cx, cy, true
	}
	if !have && len(rep.Timeline) > 0 {
		if _, ok := sr.value(rep.Timeline[0]); !ok {
			text(img, r.Min.X+10, r.Min.Y+20, "not measured (--server-pid)")
		}
	}
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten (never 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// line draws with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func text(img *image.RGBA, x, y int, s string) {
	d := font.Drawer{Dst: img, Src: &image.Uniform{colText}, Face: basicfont.Face7x13,
		Dot: fixed.P(x, y)}
	d.DrawString(s)
}
