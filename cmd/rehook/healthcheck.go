package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// defaultHealthURL is what rehook healthcheck asks when given no URL: the
// readiness check of an admin listener on this machine's port 8081.
const defaultHealthURL = "http://127.0.0.1:8081/readyz"

// runHealthcheck asks an HTTP health endpoint and fails unless it answers
// 2xx within the timeout. It is the probe of a container image that has no
// shell or curl, such as rehook's (a Docker or Compose health check).
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if done, err := parseFlags(fs, "healthcheck", args, stdout, stderr); done {
		return err
	}
	if fs.NArg() > 1 {
		return errors.New("healthcheck takes one URL at most")
	}

	target := defaultHealthURL
	if fs.NArg() == 1 {
		target = fs.Arg(0)
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("healthcheck URL %q: want http://HOST:PORT/PATH", target)
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck %s: %s", u.Redacted(), resp.Status)
	}
	fmt.Fprintf(stdout, "%s: %s\n", u.Redacted(), resp.Status)
	return nil
}
