package roommgr

import "github.com/orville/orville/sfu"

// The session handler wrapper passes the SFU's video messages through to the
// signaling layer's handler, which implements sfu.VideoHandler.

func (h *eventHandler) VideoPaused(participantID, trackID string, paused bool, reason string) {
	if vh, ok := h.Handler.(sfu.VideoHandler); ok {
		vh.VideoPaused(participantID, trackID, paused, reason)
	}
}

func (h *eventHandler) LayersWanted(trackID string, rids []string) {
	if vh, ok := h.Handler.(sfu.VideoHandler); ok {
		vh.LayersWanted(trackID, rids)
	}
}

var _ sfu.VideoHandler = (*eventHandler)(nil)
