package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orville/orville/events"
	"github.com/orville/orville/internal/config"
	"github.com/orville/orville/internal/logging"
	"github.com/orville/orville/internal/tlsutil"
	"github.com/orville/orville/metrics"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"github.com/orville/orville/web"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func serve(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, err := config.Load(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		config.Usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "orville: %v\n", err)
		return 2
	}
	log, level, err := logging.New(cfg.LogLevel, cfg.LogFormat, zapcore.AddSync(stdout))
	if err != nil {
		fmt.Fprintf(stderr, "orville: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	// SIGTERM drains, SIGINT stops now (drain.go); buffered for both and a
	// second one.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := runServerSignals(context.Background(), sigs, cfg, log, level, stderr); err != nil {
		log.Error("server stopped", zap.Error(err))
		return 1
	}
	return 0
}

// runServer runs until ctx is done or a drain (POST /v1/drain) completes.
func runServer(ctx context.Context, cfg *config.Config, log *zap.Logger, level zap.AtomicLevel, stderr io.Writer) error {
	return runServerSignals(ctx, nil, cfg, log, level, stderr)
}

// runServerSignals runs until ctx is done, a signal stops it or a drain
// completes (drainer), then shuts down: calls first (server_shutdown, so
// that clients and webhooks learn why), then listeners and client sessions.
func runServerSignals(ctx context.Context, sigs <-chan os.Signal, cfg *config.Config, log *zap.Logger, level zap.AtomicLevel, stderr io.Writer) error {
	cert, err := certificate(cfg)
	if err != nil {
		return err
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	mets, err := metrics.New(metrics.Config{Logger: log})
	if err != nil {
		return err
	}
	defer mets.Close()
	// The bus outlives the room manager (deferred before it, so closed after
	// it): the last calls' events reach every subscriber; the webhooks flush
	// after the bus.
	bus, err := events.NewBus(events.Config{Logger: log, OnDrop: mets.EventDropped})
	if err != nil {
		return err
	}
	closeHooks, err := startWebhooks(cfg, bus, mets, log)
	if err != nil {
		bus.Close()
		return err
	}
	defer closeHooks()
	defer bus.Close()
	if _, err := bus.Subscribe("metrics", mets.HandleEvent); err != nil {
		return err
	}
	// --tcp-listen first: every call's ICE-TCP candidate is on it.
	front, err := newTCPFront(cfg, tlsConf, log)
	if err != nil {
		return err
	}
	defer front.shutdown(context.Background())
	var member atomic.Pointer[clusterNode] // with --etcd-endpoints, set once rooms exist
	rooms, err := roommgr.New(roommgr.Config{
		PortStart: cfg.PortStart, MaxCalls: cfg.MaxCalls, MaxParticipants: cfg.MaxParticipants, AudioTopN: cfg.AudioTopN,
		LastN:    cfg.LastN,
		ListenIP: net.IP(cfg.ListenIP.AsSlice()), PublicIP: addrString(cfg.PublicIP), PublicIPv6: addrString(cfg.PublicIPv6),
		NodeID: cfg.NodeID, EmptyTimeout: cfg.EmptyTimeout, LeaveGrace: cfg.LeaveGrace,
		MaxCallDuration: cfg.MaxCallDuration, ResumeGrace: cfg.ResumeGrace, Logger: log, Observer: mets,
		TCPMux: front.iceMux, OnEnd: func(id, reason string) {
			front.callEnded(id, reason)
			member.Load().callEnded(id)
		},
		OnRemove: front.participantRemoved,
		Events:   bus,
	})
	if err != nil {
		return err
	}
	defer rooms.Close()
	if err := mets.WatchRooms(rooms); err != nil {
		return err
	}
	drain := newDrainer(rooms, cfg.DrainTimeout, log)
	if _, err := bus.Subscribe("drain", drain.handleEvent); err != nil {
		return err
	}
	node, err := newClusterNode(cfg, cert, rooms, mets, bus, log)
	if err != nil {
		return err
	}
	if node != nil {
		member.Store(node)
		drain.onStart = node.Poke // the others stop placing calls here at once
		// Calls end (and unpin) before the node leaves, so that its leaving
		// is not mistaken for a loss by the others.
		defer func() { rooms.Close(); node.Close() }()
	}
	sig, err := signaling.New(signaling.Config{
		Rooms: rooms, APISecret: cfg.APISecret, APIAllow: cfg.APIAllow, TokenSecret: []byte(cfg.TokenSecret),
		TokenTTL: cfg.TokenTTL, Cluster: cfg.Cluster, SignalingURL: cfg.SignalingURL(), Logger: log,
		ResumeGrace: cfg.ResumeGrace,
		Metrics:     mets, ICEServers: front.iceServers, // TURN credentials come with each join token
		ICERefresh:      front.iceRefresh(),
		SOCKSAddr:       front.socksAddr(),
		Web:             web.Handler(),  // the browser client at / on the client listener
		MetricsHandler:  mets.Handler(), // Prometheus scrapes with the API secret as its bearer token
		LogLevelHandler: level,
		Coordinator:     node.coordinator(), // nil: a single node
	})
	if err != nil {
		return err
	}
	defer sig.Close()
	node.serving(sig)

	apiMux := http.NewServeMux()
	apiMux.Handle("/", sig.APIHandler())
	if cfg.Pprof {
		apiMux.Handle("/debug/pprof/", sig.Authorized(http.HandlerFunc(pprof.Index)))
		apiMux.Handle("/debug/pprof/profile", sig.Authorized(http.HandlerFunc(pprof.Profile)))
		apiMux.Handle("/debug/pprof/trace", sig.Authorized(http.HandlerFunc(pprof.Trace)))
	}
	// A clone: ServeTLS adds "h2" to its config's NextProtos, and the client
	// listener (tcpsniff, plain http.Server.Serve) must not offer HTTP/2 it
	// cannot speak, or browsers cannot load the web client.
	apiSrv, err := listenTLS(cfg.APIListen, tlsConf.Clone(), apiMux, log)
	if err != nil {
		return err
	}
	if err := front.serve(rooms, sig.ClientHandler()); err != nil {
		_ = apiSrv.Close()
		return err
	}
	if err := mets.WatchEdges(front.edgeStats); err != nil {
		_ = apiSrv.Close()
		return err
	}
	health, err := listenHealth(cfg.HealthListen, sig.HealthHandler(), log)
	if err != nil {
		_ = apiSrv.Close()
		return err
	}
	first, last := cfg.MediaPortRange()
	log.Info("orville serving",
		zap.String("version", version), zap.String("api", cfg.APIURL()), zap.String("signaling", cfg.SignalingURL()),
		zap.String("mediaPorts", fmt.Sprintf("udp %s %d-%d", cfg.ListenIP, first, last)),
		zap.String("publicIP", addrString(cfg.PublicIP)), zap.Bool("publicIPDetected", cfg.PublicIPDetected),
		zap.Int("maxCalls", cfg.MaxCalls), zap.Int("maxParticipants", cfg.MaxParticipants),
		zap.String("node", cfg.NodeID), zap.Strings("etcd", cfg.EtcdEndpoints))
	if cfg.GeneratedSecret {
		// Printed once, to stderr, so that it is not mixed into JSON logs.
		fmt.Fprintf(stderr, "API secret (generated for this run): %s\n", cfg.APISecret)
		fmt.Fprintf(stderr, "try: ORVILLE_API_SECRET=%s orville test-calling --api %s --insecure\n", cfg.APISecret, cfg.APIURL())
	}

	drain.wait(ctx, sigs)
	rooms.Close() // every call still running ends with server_shutdown
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = apiSrv.Shutdown(sctx)
	if health != nil {
		_ = health.Shutdown(sctx)
	}
	sig.Close() // hijacked WebSockets are not covered by Shutdown
	front.shutdown(sctx)
	return nil
}

func listenTLS(addr string, tlsConf *tls.Config, h http.Handler, log *zap.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http").WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("listener stopped", zap.String("addr", addr), zap.Error(err))
		}
	}()
	return srv, nil
}

func certificate(cfg *config.Config) (tls.Certificate, error) {
	if cfg.TLSCert != "" {
		return tlsutil.Load(cfg.TLSCert, cfg.TLSKey)
	}
	hosts := []string{addrString(cfg.PublicIP), addrString(cfg.PublicIPv6), cfg.CallingHostname}
	return tlsutil.SelfSigned(hosts, 365*24*time.Hour)
}

func addrString(a interface {
	IsValid() bool
	String() string
}) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
