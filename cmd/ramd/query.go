package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/internal/apiclient"
)

// queryFlags are shared by status, health and info.
type queryFlags struct {
	config  *string
	url     *string
	json    *bool
	timeout *time.Duration
}

func addQueryFlags(fs *flag.FlagSet) queryFlags {
	return queryFlags{
		config:  fs.String("config", defaultConfigPath(), "configuration file (to find the local API)"),
		url:     fs.String("url", "", "API base URL (default: the local daemon's, from the config)"),
		json:    fs.Bool("json", false, "print the API's JSON"),
		timeout: fs.Duration("timeout", 5*time.Second, "request timeout"),
	}
}

// localAPIURL is the URL this host's daemon answers on: the configured
// host, or loopback when the API listens on every address.
func localAPIURL(cfg *configs.Config) string {
	host := cfg.API.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.API.SSLEnabled {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(cfg.API.Port))
}

// localHTTPClient reaches the local daemon's API: with TLS on, trusting
// [api] ca_file and presenting the node's own certificate (accepted when
// the API verifies clients), as the daemon does towards its peers.
func localHTTPClient(cfg *configs.Config) (*http.Client, error) {
	if !cfg.API.SSLEnabled {
		return http.DefaultClient, nil
	}
	return apiclient.TLSFiles{CAFile: cfg.API.CAFile, CertFile: cfg.API.CertFile, KeyFile: cfg.API.KeyFile}.HTTPClient()
}

// get asks the local daemon (or --url) for path. A daemon that does not
// answer is exitNotRunning.
func (q queryFlags) get(path string) (apiclient.Response, error) {
	url, token := *q.url, os.Getenv("RAMD_TOKEN")
	var hc *http.Client
	if url == "" {
		cfg, err := loadConfig(*q.config)
		if err != nil {
			return apiclient.Response{}, err
		}
		url = localAPIURL(cfg)
		if hc, err = localHTTPClient(cfg); err != nil {
			return apiclient.Response{}, err
		}
		if token == "" {
			// The local daemon's own token (the read token is enough).
			if token = cfg.API.ReadToken; token == "" {
				token, _ = cfg.API.AdminToken()
			}
		}
	}
	c := apiclient.Client{URLs: []string{url}, Token: token, Timeout: *q.timeout, HTTP: hc}
	r, err := c.Get(context.Background(), path)
	if errors.Is(err, apiclient.ErrUnreachable) {
		return r, exitError{exitNotRunning, fmt.Errorf("ramd is not reachable: %v", strings.TrimPrefix(err.Error(), apiclient.ErrUnreachable.Error()+": "))}
	}
	return r, err
}

func (q queryFlags) printJSON(out io.Writer, r apiclient.Response) error {
	_, err := out.Write(append(r.Body, '\n'))
	return err
}

func cmdStatus(args []string, out io.Writer) error {
	fs := newFlagSet("status")
	q := addQueryFlags(fs)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	r, err := q.get("/api/v1/cluster/status")
	if err != nil {
		return err
	}
	if *q.json {
		return q.printJSON(out, r)
	}
	var s apiclient.Status
	if err := r.Decode(&s); err != nil {
		return err
	}
	apiclient.PrintStatus(out, s)
	return nil
}

func cmdHealth(args []string, out io.Writer) error {
	fs := newFlagSet("health")
	q := addQueryFlags(fs)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	r, err := q.get("/api/v1/cluster/health")
	if err != nil {
		return err
	}
	var h apiclient.Health
	if err := r.Decode(&h); err != nil {
		return err
	}
	if *q.json {
		q.printJSON(out, r)
	} else {
		apiclient.PrintHealth(out, h)
	}
	switch h.Status {
	case "healthy":
		return nil
	case "degraded":
		return exitError{exitFailure, errors.New("cluster is degraded")}
	default:
		return exitError{exitCritical, fmt.Errorf("cluster is %s", h.Status)}
	}
}

func cmdInfo(args []string, out io.Writer) error {
	fs := newFlagSet("info")
	q := addQueryFlags(fs)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	r, err := q.get("/api/v1/node/info")
	if err != nil {
		return err
	}
	if *q.json {
		return q.printJSON(out, r)
	}
	var info map[string]any
	if err := r.Decode(&info); err != nil {
		return err
	}
	keys := []string{"node_id", "name", "cluster_name", "role", "version", "postgresql_version", "data_directory", "uptime_seconds", "api_url", "mesh_addr", "pg_host", "pg_port"}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, k := range keys {
		if v, ok := info[k]; ok {
			fmt.Fprintf(tw, "%s:\t%v\n", k, v)
		}
	}
	return tw.Flush()
}
