package loadtest

import (
	"fmt"
	"testing"
)

// --tiles: each participant shows the next Tiles video publishers of its
// call, wrapping around, never itself.
func TestTilesOf(t *testing.T) {
	r := &runner{cfg: Config{Participants: 10, VideoPublishers: 10, Tiles: 4}}
	for id, want := range map[string]string{
		"lt-0-3": "[lt-0-4 lt-0-5 lt-0-6 lt-0-7]",
		"lt-2-8": "[lt-2-9 lt-2-0 lt-2-1 lt-2-2]",
	} {
		if got := fmt.Sprint(r.tilesOf(&participant{id: id})); got != want {
			t.Errorf("%s shows %s, want %s", id, got, want)
		}
	}
	r.cfg.VideoPublishers = 3 // only the first three publish video
	if got := fmt.Sprint(r.tilesOf(&participant{id: "lt-0-1"})); got != "[lt-0-2 lt-0-0]" {
		t.Errorf("with 3 video publishers lt-0-1 shows %s", got)
	}
	if !r.shows(&participant{id: "lt-0-1"}, &participant{id: "lt-0-0"}) || r.shows(&participant{id: "lt-0-1"}, &participant{id: "lt-0-5"}) {
		t.Error("shows disagrees with tilesOf")
	}
}
