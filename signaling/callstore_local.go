package signaling

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/orville/orville/cluster"
	"github.com/orville/orville/roommgr"
	"go.uber.org/zap"
)

// localCalls serves the calls of this node's room manager. In a cluster it
// pins each call it creates (pin is Coordinator.Pin) and names this node
// as the owner in call info.
type localCalls struct {
	s   *Server
	pin func(ctx context.Context, id string) error
	pid string // set in a cluster: the owner's node id in call info
}

func (l *localCalls) create(ctx context.Context, req createCallRequest) (startCallResponse, *apiErr) {
	s := l.s
	opts, msg := s.createOptions(req)
	if msg != "" {
		return startCallResponse{}, errorf(http.StatusBadRequest, apiCodeBadRequest, msg)
	}
	room, err := s.rooms.Create(opts)
	var noCap *roommgr.NoCapacityError
	switch {
	case errors.As(err, &noCap):
		return startCallResponse{}, errorf(http.StatusServiceUnavailable, apiCodeNoCapacity, noCap.Error())
	case errors.Is(err, roommgr.ErrDraining):
		return startCallResponse{}, errDraining()
	case errors.Is(err, roommgr.ErrClosed):
		return startCallResponse{}, errorf(http.StatusServiceUnavailable, apiCodeShuttingDown, "the server is shutting down")
	case err != nil:
		s.log.Error("create call", zap.Error(err))
		return startCallResponse{}, errorf(http.StatusInternalServerError, apiCodeInternal, "the call could not be created")
	}
	if l.pin != nil {
		if err := l.pin(ctx, room.ID); err != nil {
			// A call no other node can find must not exist: the messaging
			// server would be told of a call the cluster cannot serve.
			room.End("cluster_unavailable")
			if errors.Is(err, cluster.ErrPinned) {
				s.log.Error("new call id already pinned", zap.String("call", room.ID))
			}
			return startCallResponse{}, errorf(http.StatusServiceUnavailable, apiCodeClusterUnavailable,
				"this node cannot record the call in etcd: "+err.Error())
		}
	}
	rc := s.rooms.Config()
	uri, uri6 := s.roomURIs(room.Port)
	return startCallResponse{
		Cluster:      s.cfg.Cluster,
		State:        startCallState{EventID: room.ID, RoomURIIPv6: uri6, PID: rc.NodeID, RoomURI: uri},
		SignalingURL: s.cfg.SignalingURL,
		ExpiresAt:    rfc3339(room.ExpiresAt),
		Ports:        portPair{room.Port, room.Port + 1},
	}, nil
}

func (l *localCalls) info(room *roommgr.Room) callInfo {
	ci := l.s.callInfo(room)
	ci.PID = l.pid
	return ci
}

func (l *localCalls) list(context.Context) (callList, *apiErr) {
	rooms := l.s.rooms.List()
	out := make([]callInfo, 0, len(rooms))
	for _, room := range rooms {
		out = append(out, l.info(room))
	}
	return callList{Calls: out}, nil
}

func callNotFound(id string) *apiErr {
	return errorf(http.StatusNotFound, apiCodeCallNotFound, fmt.Sprintf("no call with eventId %q", clip(id)))
}

func (l *localCalls) room(id string) (*roommgr.Room, *apiErr) {
	room, err := l.s.rooms.Get(id)
	if err != nil {
		return nil, callNotFound(id)
	}
	return room, nil
}

func (l *localCalls) get(_ context.Context, id string) (callInfo, *apiErr) {
	room, e := l.room(id)
	if e != nil {
		return callInfo{}, e
	}
	return l.info(room), nil
}

func (l *localCalls) end(_ context.Context, id string) *apiErr {
	if err := l.s.rooms.End(id, "ended_by_api"); err != nil {
		return callNotFound(id)
	}
	return nil
}

func (l *localCalls) addParticipant(_ context.Context, id string, req addParticipantRequest) (addParticipantResponse, *apiErr) {
	s := l.s
	room, e := l.room(id)
	if e != nil {
		return addParticipantResponse{}, e
	}
	publish := req.Publish == nil || *req.Publish
	room.Readmit(req.ID) // a new invitation lifts an earlier removal
	now := time.Now()
	exp := now.Add(s.tokens.ttl)
	// The token's id is a grant of the room: removing the participant
	// revokes it, whatever invitations follow.
	grant := room.Grant(req.ID, exp)
	if grant == "" {
		return addParticipantResponse{}, callNotFound(id) // ended meanwhile
	}
	token, err := s.tokens.issue(room.ID, req.ID, req.Name, grant, publish, now, exp)
	if err != nil {
		s.log.Error("issue join token", zap.String("call", room.ID), zap.Error(err))
		return addParticipantResponse{}, errorf(http.StatusInternalServerError, apiCodeInternal, "the token could not be issued")
	}
	ice := s.cfg.ICEServers(room.ID, req.ID)
	if ice == nil {
		ice = []ICEServer{}
	}
	resp := addParticipantResponse{Token: token, ExpiresAt: rfc3339(exp), SignalingURL: s.cfg.SignalingURL, ICEServers: ice}
	if s.cfg.SOCKSAddr != "" && len(ice) > 0 && ice[0].Username != "" {
		resp.SOCKS = &socksProxy{Address: s.cfg.SOCKSAddr, Username: ice[0].Username, Password: ice[0].Credential}
	}
	return resp, nil
}

func (l *localCalls) removeParticipant(_ context.Context, id, participant string) *apiErr {
	room, e := l.room(id)
	if e != nil {
		return e
	}
	if !room.Remove(participant) {
		return errorf(http.StatusNotFound, apiCodeParticipantNotFound,
			fmt.Sprintf("participant %q is not in call %s", clip(participant), room.ID))
	}
	return nil
}
