package signaling

import "time"

// iceServersMsg gives a joined client fresh ICE servers (TURN credentials,
// also good for the SOCKS relay) before the ones it holds expire: the
// credentials allow new allocations for a short time only.
type iceServersMsg struct {
	Type       string      `json:"type"`
	ICEServers []ICEServer `json:"iceServers"`
}

// startICERefresh schedules the first iceServers message of a joined
// session, every Config.ICERefresh.
func (ss *session) startICERefresh() {
	d := ss.s.cfg.ICERefresh
	if d <= 0 {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.closing {
		ss.refresh = time.AfterFunc(d, ss.refreshICE)
	}
}

func (ss *session) refreshICE() {
	servers := ss.s.cfg.ICEServers(ss.room.ID, ss.claims.Subject)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closing {
		return
	}
	if servers == nil {
		servers = []ICEServer{}
	}
	ss.sendLocked(iceServersMsg{Type: "iceServers", ICEServers: servers})
	ss.refresh.Reset(ss.s.cfg.ICERefresh)
}

// stopICERefresh ends the refreshes (the session is over).
func (ss *session) stopICERefresh() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.refresh != nil {
		ss.refresh.Stop()
	}
}
