package loadtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orville/orville/client"
)

// maxConcurrentJoins is the default bound on client.Join calls in flight (see join).
const maxConcurrentJoins = 16

// maxJoinErrors bounds the join errors the report repeats.
const maxJoinErrors = 5

// participant is one synthetic client of the run.
type participant struct {
	call, id     string
	callStart    time.Time // the start-call request for its call
	dialStart    time.Time // its own WebSocket dial (after waiting for a join slot)
	audio, video bool
	talker       int // with Config.Talkers: its rank among the talkers, else -1
	c            *client.Client
	err          error
	subscribed   atomic.Bool // the subscribe transport has connected
}

// stats returns the client's statistics once its subscribe transport has
// connected, else ok is false. Before that, pion may still be starting the
// transport, and reading its candidate pair then races with the start
// (pion's ICETransport reads those fields without its lock); a participant
// whose subscribe transport has not connected has received nothing anyway.
func (p *participant) stats() (st client.Stats, ok bool) {
	if !p.subscribed.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		err := p.c.WaitConnected(ctx, client.TransportSubscribe)
		cancel()
		if err != nil {
			return st, false
		}
		p.subscribed.Store(true)
	}
	return p.c.Stats(), true
}

// runner holds one run's state.
type runner struct {
	cfg  Config
	hc   *http.Client
	api  *client.APIClient
	prog *progress

	mu      sync.Mutex
	parts   []*participant
	joined  int
	calls   []string
	perNode map[string]int    // calls by the start-call pid of their node
	secrets map[string][]byte // per call, with --e2ee
	dials   chan struct{}     // bounds the joins in flight
}

// Run performs one load test and returns its report. It stops early, with
// what was measured so far, when ctx ends during the media phase.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, configError{err}
	}
	r := &runner{cfg: cfg, hc: cfg.httpClient(), dials: make(chan struct{}, cfg.JoinConcurrency)}
	defer r.hc.CloseIdleConnections()
	r.api = &client.APIClient{BaseURL: strings.TrimRight(cfg.APIURL, "/"), Secret: cfg.APISecret, HTTPClient: r.hc}
	r.prog = newProgress(cfg.Progress, cfg.Calls*cfg.Participants, cfg.Duration)
	defer r.prog.finish()

	rep := &Report{StartedAt: time.Now(), Scenario: Scenario{
		Calls: cfg.Calls, Participants: cfg.Participants, AudioPublishers: cfg.AudioPublishers,
		VideoPublishers: cfg.VideoPublishers, DurationSeconds: cfg.Duration.Seconds(),
		VideoBitrate: cfg.VideoBitrate, E2EE: cfg.E2EE, ForceTCP: cfg.ForceTCP,
		Simulcast: cfg.Simulcast, Tiles: cfg.Tiles, TileHeight: cfg.TileHeight,
	}}
	smp := newSampler(r, rep.StartedAt)
	if err := smp.begin(ctx); err != nil {
		return nil, err
	}
	defer r.cleanup()

	// Join phase: every call at once, and in each call every participant at
	// once, as when a messaging server rings a group.
	var wg sync.WaitGroup
	for i := range cfg.Calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.startCall(ctx, i)
		}()
	}
	stopSampling := smp.loop(ctx)
	wg.Wait()
	// The media window opens when every participant receives every
	// publisher it should (or after JoinTimeout): DTLS handshakes and
	// renegotiations belong to the join, not to the forwarding cost.
	r.waitForMedia(ctx)
	rep.JoinPhaseSeconds = time.Since(rep.StartedAt).Seconds()
	failures := []string{}
	for _, p := range r.parts {
		if p.err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", p.id, p.err))
		}
	}
	rep.Joined, rep.JoinFailures = len(r.parts)-len(failures), len(failures)
	rep.JoinErrors = failures[:min(len(failures), maxJoinErrors)]
	if rep.Joined == 0 {
		stopSampling()
		if len(failures) == 0 {
			return nil, errors.New("loadtest: no participant joined")
		}
		return nil, fmt.Errorf("loadtest: no participant joined; first error: %s", failures[0])
	}

	// Media phase.
	smp.markMediaStart(ctx)
	r.prog.mediaStarted()
	talk, stopTalk := context.WithCancel(ctx)
	go r.rotateTalkers(talk)
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
	}
	stopTalk()
	stopSampling()
	smp.finish(context.WithoutCancel(ctx), rep)
	return rep, nil
}

// startCall creates call i and joins its participants concurrently.
func (r *runner) startCall(ctx context.Context, i int) {
	start := time.Now()
	sc, err := r.api.CreateCall(ctx, &client.CreateCallOptions{MaxParticipants: r.cfg.Participants})
	var parts []*participant
	for j := range r.cfg.Participants {
		p := &participant{id: fmt.Sprintf("lt-%d-%d", i, j), callStart: start,
			audio: j < r.cfg.AudioPublishers, video: j < r.cfg.VideoPublishers, talker: -1}
		if j < r.cfg.Talkers {
			p.talker = j
		}
		if err != nil {
			p.err = fmt.Errorf("start call: %w", err)
		} else {
			p.call = sc.State.EventID
		}
		parts = append(parts, p)
	}
	r.mu.Lock()
	r.parts = append(r.parts, parts...)
	if err == nil {
		r.calls = append(r.calls, sc.State.EventID)
		if r.perNode == nil {
			r.perNode = map[string]int{}
		}
		r.perNode[sc.State.PID]++
	}
	r.mu.Unlock()
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.join(ctx, sc, p)
		}()
	}
	wg.Wait()
}

func (r *runner) join(ctx context.Context, sc *client.StartCall, p *participant) {
	g, err := r.api.AddParticipant(ctx, p.call, p.id)
	if err != nil {
		p.err = fmt.Errorf("join token: %w", err)
		return
	}
	url := g.SignalingURL
	if r.cfg.SignalingURL != "" {
		url = r.cfg.SignalingURL
	} else if url == "" {
		url = sc.SignalingURL
	}
	ccfg := client.Config{SignalingURL: url, Token: g.Token, TLSConfig: r.cfg.tlsConfig(),
		ParticipantID: p.id, PublishAudio: p.audio, PublishVideo: p.video,
		VideoBitrate: r.cfg.VideoBitrate, Logger: r.cfg.Logger, JoinTimeout: r.cfg.JoinTimeout,
		AudioLevel: r.talkLevel(p, 0), Simulcast: r.cfg.Simulcast && p.video}
	ccfg.ForceTCP = r.cfg.ForceTCP
	if r.cfg.E2EE {
		t, err := client.NewE2EE(client.E2EEConfig{Secret: r.callSecret(p.call)})
		if err != nil {
			p.err = err
			return
		}
		ccfg.Transform = t
	}
	// All clients dial from this one address: a burst of hundreds of TLS
	// handshakes at once would measure the two cores' handshake queue (and
	// the server's TCP front closes the oldest pending past 256 per address),
	// not join time. Keep the dials in flight bounded.
	select {
	case r.dials <- struct{}{}:
	case <-ctx.Done():
		p.err = ctx.Err()
		return
	}
	p.dialStart = time.Now()
	c, err := client.Join(ctx, ccfg)
	<-r.dials
	if err != nil {
		p.err = err
		return
	}
	if err := r.subscribeTiles(c, p); err != nil {
		p.err = err
		_ = c.Close()
		return
	}
	r.mu.Lock()
	p.c = c
	r.joined++
	r.mu.Unlock()
	r.prog.joined()
}

// clients returns the joined participants.
func (r *runner) clients() []*participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*participant, 0, r.joined)
	for _, p := range r.parts {
		if p.c != nil {
			out = append(out, p)
		}
	}
	return out
}

// cleanup leaves and ends every call, whatever happened.
func (r *runner) cleanup() {
	var wg sync.WaitGroup
	for _, p := range r.clients() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.c.Close()
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.mu.Lock()
	calls := append([]string(nil), r.calls...)
	r.mu.Unlock()
	for _, id := range calls {
		_ = r.api.EndCall(ctx, id) // a call already ended by its last leave answers 404: fine
	}
}

// waitForMedia waits until every joined participant receives a track from
// every other joined publisher of its call, at most JoinTimeout.
func (r *runner) waitForMedia(ctx context.Context) {
	parts := r.clients()
	want := map[*participant]int{}
	for _, p := range parts {
		for _, q := range parts {
			if q != p && q.call == p.call {
				// Silent publishers may be held back by the server (top-N).
				want[p] += btoi(q.audio && (r.cfg.Talkers == 0 || q.talker >= 0)) + btoi(q.video && r.shows(p, q))
			}
		}
	}
	deadline := time.Now().Add(r.cfg.JoinTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ready := true
		for _, p := range parts {
			n := 0
			st, _ := p.stats()
			for _, rt := range st.Received {
				if rt.Packets > 0 {
					n++
				}
			}
			if n < want[p] {
				ready = false
				break
			}
		}
		if ready {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// callSecret is the call's shared E2EE secret, made on first use. It stays
// in this process: the server never sees it.
func (r *runner) callSecret(call string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secrets == nil {
		r.secrets = map[string][]byte{}
	}
	if s, ok := r.secrets[call]; ok {
		return s
	}
	s := make([]byte, 32)
	_, _ = rand.Read(s)
	r.secrets[call] = s
	return s
}

// talkLevel is a participant's audio level (-dBov, RFC 6464) in rotation
// rot: with Config.Talkers, talkers are 8 dB apart and the loudest moves on
// every rotation; everybody else is silent.
func (r *runner) talkLevel(p *participant, rot int) uint8 {
	if r.cfg.Talkers == 0 {
		return client.DefaultAudioLevel
	}
	if p.talker < 0 {
		return client.Silence
	}
	return uint8(18 + 8*((p.talker+rot)%r.cfg.Talkers))
}

// rotateTalkers changes the loudest talker every TalkRotation until ctx ends.
func (r *runner) rotateTalkers(ctx context.Context) {
	if r.cfg.Talkers < 2 {
		return
	}
	t := time.NewTicker(r.cfg.TalkRotation)
	defer t.Stop()
	for rot := 1; ; rot++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range r.clients() {
			if p.talker >= 0 && p.c != nil {
				p.c.SetAudioLevel(r.talkLevel(p, rot))
			}
		}
	}
}
