package sfu

import "go.uber.org/zap"

// RestartICE makes the next subscribe offer an ICE restart (RFC 8445 §9,
// RFC 8839 §4.4.1.1: new ufrag and password, fresh candidates) and asks for
// it now: a client whose network path changed gets fresh checks on the
// subscribe transport without a new join; DTLS and SRTP carry on. With an
// offer outstanding, the restart follows its answer (one offer at a time).
func (p *Participant) RestartICE() {
	p.mu.Lock()
	p.iceRestart = true
	p.changed()
	p.mu.Unlock()
}

// restartICEIfAsked runs on the negotiation goroutine before an offer is
// built: it restarts the subscribe transport's ICE when RestartICE asked
// and no offer is outstanding, and gathers the new candidates.
func (p *Participant) restartICEIfAsked() {
	p.mu.Lock()
	if !p.iceRestart || p.sub.pending != nil {
		p.mu.Unlock()
		return
	}
	p.iceRestart = false
	p.mu.Unlock()
	if err := p.subT.restartICE(); err != nil {
		p.log.Warn("subscribe ICE restart", zap.Error(err))
		return
	}
	// The answer brings the client's new credentials: start must hand them
	// to the agent even if the client kept its ufrag.
	p.subT.mu.Lock()
	p.subT.remoteUfrag = ""
	p.subT.mu.Unlock()
	cands, err := p.subT.candidates()
	if err != nil {
		p.log.Warn("subscribe ICE restart: candidates", zap.Error(err))
		return
	}
	p.mu.Lock()
	p.sub.cands = cands
	p.mu.Unlock()
}
