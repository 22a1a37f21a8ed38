package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// listenHealth serves --health-listen: plain HTTP (probes carry no secret
// and kubelets do not verify certificates), only /healthz and /readyz
// (signaling.Server.HealthHandler), tight timeouts since only probes come
// here. nil when the setting is off.
func listenHealth(addr string, h http.Handler, log *zap.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s (--health-listen): %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    4 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("health").WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health listener stopped", zap.String("addr", addr), zap.Error(err))
		}
	}()
	log.Info("health probes", zap.String("listen", addr), zap.Strings("paths", []string{"/healthz", "/readyz"}))
	return srv, nil
}
