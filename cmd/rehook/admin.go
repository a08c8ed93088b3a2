package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/rehook/rehook/admin"
)

// adminServer is the admin listener of a process.
type adminServer struct {
	addr    string
	srv     *http.Server
	handler *admin.Handler
}

// startAdmin listens on REHOOK_ADMIN_ADDR and serves the admin handler
// until stop; a serve error goes to errc. An address in use is an error
// that names the setting: two processes on one host need two addresses.
func startAdmin(cfg config, c *components, errc chan<- error) (*adminServer, error) {
	h, err := admin.New(admin.Config{
		Store:     c.store,
		Redis:     c.redis,
		Metrics:   c.metrics,
		Log:       c.log,
		RedisInfo: c.redisInfo,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("REHOOK_ADMIN_ADDR: %w (each process on a host needs "+
			"an address of its own; 127.0.0.1:0 picks a free port)", err)
	}

	a := &adminServer{
		addr:    ln.Addr().String(),
		handler: h,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
	}
	go func() {
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin listener: %w", err)
		}
	}()
	c.log.Info("admin listening", zap.String("addr", a.addr),
		zap.String("dashboard", a.dashboardURL()))
	return a, nil
}

// dashboardURL is where a browser on this host finds the dashboard.
func (a *adminServer) dashboardURL() string {
	return "http://" + a.addr + admin.DashboardPath + "/"
}

// stop closes the listener at once: nothing served there needs draining.
func (a *adminServer) stop() {
	_ = a.srv.Close()
	_ = a.handler.Close()
}
