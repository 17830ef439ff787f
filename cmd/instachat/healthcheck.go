package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/instachat/instachat/server"
)

// healthTimeout bounds `instachat healthcheck`, within the interval of a
// container health check.
const healthTimeout = 3 * time.Second

// healthcheck is `instachat healthcheck`: GET /healthz of the server that
// the same settings start, on this host, and fail unless it answers 200.
// It is the container health check: the distroless image has no curl.
func healthcheck(ctx context.Context, args []string, sys *system) error {
	cfg, _, err := server.ParseConfig(flagSet("healthcheck", sys), args, sys.getenv)
	if err != nil {
		return err
	}
	url, err := healthURL(cfg.Addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	sys.stdout.Write(body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: GET %s answered %s", url, res.Status)
	}
	return nil
}

// healthURL is the /healthz URL of a server listening on addr, reached on
// the loopback interface when addr names no host or all of them.
func healthURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("INSTACHAT_ADDR %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
