package signaling

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/orville/orville/sfu"
)

// Video control (docs/signaling.md, "Video: simulcast, bandwidth and
// layers"): the client's `subscription`, and the server's `videoPaused`
// and `layers`.

// videoSelection is one entry of `subscription`'s video list.
type videoSelection struct {
	ParticipantID string `json:"participantId"`
	TrackID       string `json:"trackId,omitempty"`
	MaxHeight     int    `json:"maxHeight,omitempty"`
	Pinned        bool   `json:"pinned,omitempty"`
}

type (
	videoPausedMsg struct {
		Type          string `json:"type"`
		ParticipantID string `json:"participantId"`
		TrackID       string `json:"trackId"`
		Paused        bool   `json:"paused"`
		Reason        string `json:"reason,omitempty"`
	}
	layersMsg struct {
		Type    string   `json:"type"`
		TrackID string   `json:"trackId"`
		Rids    []string `json:"rids"`
	}
)

// subscription applies a `subscription` message: `video` lists what to
// receive; absent or null is the default (last-N).
func (ss *session) subscription(m *inMessage) {
	explicit := len(m.Video) > 0 && string(m.Video) != "null"
	var list []sfu.VideoSelection
	if explicit {
		var sels []videoSelection
		if err := json.Unmarshal(m.Video, &sels); err != nil {
			ss.refuse(codeBadMessage, `subscription: "video" must be a list of {"participantId","trackId","maxHeight","pinned"}`)
			return
		}
		if len(sels) > sfu.MaxVideoSelections {
			ss.refuse(codeBadMessage, fmt.Sprintf("subscription: %d videos, at most %d", len(sels), sfu.MaxVideoSelections))
			return
		}
		list = make([]sfu.VideoSelection, 0, len(sels))
		for _, s := range sels {
			list = append(list, sfu.VideoSelection{ParticipantID: s.ParticipantID, TrackID: s.TrackID,
				MaxHeight: s.MaxHeight, Pinned: s.Pinned})
		}
	}
	if err := ss.part.SetVideoSubscription(list, explicit); err != nil {
		if errors.Is(err, sfu.ErrInvalidSubscription) {
			ss.refuse(codeBadMessage, err.Error())
		}
	}
}

// VideoPaused and LayersWanted make the slot an sfu.VideoHandler: both are
// call messages (numbered, replayed on resume).
func (sl *slot) VideoPaused(pid, tid string, paused bool, reason string) {
	if !paused {
		reason = ""
	}
	sl.deliver(videoPausedMsg{Type: "videoPaused", ParticipantID: pid, TrackID: tid, Paused: paused, Reason: reason}, false)
}

func (sl *slot) LayersWanted(tid string, rids []string) {
	sl.deliver(layersMsg{Type: "layers", TrackID: tid, Rids: rids}, false)
}
