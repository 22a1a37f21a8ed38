package sfu

import (
	"sort"

	"github.com/pion/webrtc/v4"
)

// What the API (GET /v1/calls/{eventId}) and the metrics see of video
// allocation.

// VideoReceiveInfo is one subscriber's video: its bandwidth estimate and
// what the allocator gave it.
type VideoReceiveInfo struct {
	// EstimateBps is the send-side estimate toward the subscriber (bits/s).
	EstimateBps int64 `json:"estimateBps"`
	// AllocatedBps is what the chosen video layers cost.
	AllocatedBps int64 `json:"allocatedBps"`
	// WantedBps is what the subscriber would receive without a limit
	// (audio included, with the upgrade margin).
	WantedBps int64 `json:"wantedBps"`
	// LossPercent is the loss its feedback reported lately.
	LossPercent float64 `json:"lossPercent"`
	// Subscription is "explicit" (a `subscription` message) or "last-n".
	Subscription string                 `json:"subscription"`
	Tracks       []VideoTrackAllocation `json:"tracks"`
}

// VideoTrackAllocation is one video as one subscriber receives it.
type VideoTrackAllocation struct {
	ParticipantID string `json:"participantId"`
	TrackID       string `json:"trackId"`
	// Layer is forwarded now and TargetLayer is the allocator's choice
	// (the rid; "single" without simulcast; "" for none).
	Layer       string `json:"layer"`
	TargetLayer string `json:"targetLayer"`
	Paused      bool   `json:"paused"`
	Reason      string `json:"reason,omitempty"` // "bandwidth" or "not_selected"
	MaxHeight   int    `json:"maxHeight,omitempty"`
	Bps         int64  `json:"bps"` // the chosen layer's cost
}

// ParticipantDetails is Participants with each one's video allocation: for
// the API, not for other participants.
func (c *Call) ParticipantDetails() []ParticipantInfo {
	c.mu.Lock()
	list := c.othersLocked(nil)
	c.mu.Unlock()
	out := make([]ParticipantInfo, 0, len(list))
	for _, p := range list {
		info := p.Info()
		vi := p.videoInfo()
		info.Video = &vi
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func layerName(up *upTrack, layer int) string {
	switch {
	case layer < 0:
		return ""
	case len(up.rids) == 0:
		return "single"
	case layer < len(up.rids):
		return up.rids[layer]
	}
	return ""
}

// videoInfo reads the subscriber's allocation.
func (p *Participant) videoInfo() VideoReceiveInfo {
	v := p.video
	e := v.bwe
	vi := VideoReceiveInfo{EstimateBps: e.estimate.Load(), WantedBps: e.wanted.Load(),
		LossPercent: float64(e.lossPct.Load()) / 10, Subscription: "last-n", Tracks: []VideoTrackAllocation{}}
	v.mu.Lock()
	if v.explicit {
		vi.Subscription = "explicit"
	}
	for d, st := range v.tracks {
		a := VideoTrackAllocation{ParticipantID: d.up.owner.id, TrackID: d.up.id,
			Layer: layerName(d.up, int(d.sel.current.Load())-1), TargetLayer: layerName(d.up, st.target),
			Paused: st.target < 0, MaxHeight: st.maxHeight, Bps: st.allocatedBps}
		if st.target < 0 {
			a.Reason = PauseNotSelected
			if st.pausedBW {
				a.Reason = PauseBandwidth
			}
		}
		vi.AllocatedBps += st.allocatedBps
		vi.Tracks = append(vi.Tracks, a)
	}
	v.mu.Unlock()
	sort.Slice(vi.Tracks, func(i, j int) bool {
		a, b := vi.Tracks[i], vi.Tracks[j]
		if a.ParticipantID != b.ParticipantID {
			return a.ParticipantID < b.ParticipantID
		}
		return a.TrackID < b.TrackID
	})
	return vi
}

// VideoSummary aggregates a call's video allocation for metrics (no
// per-participant labels): the estimate of every subscriber, and video down
// tracks by the position of the layer they forward ("q", "h", "f" for
// the lowest to the highest of a simulcast track, whatever its rids;
// "single" without simulcast), or "paused".
type VideoSummary struct {
	Estimates []int64
	ByLayer   map[string]int
}

// VideoSummary reads the call's video allocation.
func (c *Call) VideoSummary() VideoSummary {
	c.mu.Lock()
	list := c.othersLocked(nil)
	c.mu.Unlock()
	sum := VideoSummary{ByLayer: map[string]int{}}
	positions := [maxLayers]string{"q", "h", "f"}
	for _, p := range list {
		sum.Estimates = append(sum.Estimates, p.video.bwe.estimate.Load())
		videos, _ := p.receivedTracks()
		for _, d := range videos {
			if d.up.kind != webrtc.RTPCodecTypeVideo {
				continue
			}
			cur := int(d.sel.current.Load()) - 1
			switch {
			case d.sel.target.Load() < 0:
				sum.ByLayer["paused"]++
			case cur < 0:
				sum.ByLayer["starting"]++
			case len(d.up.rids) == 0:
				sum.ByLayer["single"]++
			case cur < maxLayers:
				sum.ByLayer[positions[cur]]++
			}
		}
	}
	return sum
}
