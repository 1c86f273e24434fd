package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ramd/ramd/internal/apiclient"
)

const usage = `ramctl - operate a ramd cluster through any node's API

Usage:
  ramctl [global flags] list [-w] [--interval D]   nodes as a table (alias: status)
  ramctl [global flags] health                     cluster health (exit 0 healthy, 1 degraded, 2 failed)
  ramctl [global flags] switchover [--candidate N] [--at RFC3339] [--force]
                                                   planned change of primary, no data lost
  ramctl [global flags] switchover cancel          withdraw a pending switchover
  ramctl [global flags] failover --candidate N [--allow-data-loss] [--force]
                                                   promote N when the primary has failed
  ramctl [global flags] maintenance on|off|status  automatic failover off/on
  ramctl [global flags] replication stop|start NODE | status
                                                   detach a replica from streaming, re-attach it
  ramctl [global flags] node add ID --address HOST [--port P]
  ramctl [global flags] node remove ID [--force]   add a daemon to the cluster; remove a stopped one
  ramctl [global flags] config show [--cluster]    this node's configuration and sources; the cluster overrides
  ramctl [global flags] config set KEY=VALUE... | unset KEY... | edit
                                                   change the cluster-wide overrides
  ramctl [global flags] restart NODE [--allow-primary] [--force]
                                                   restart NODE's PostgreSQL
  ramctl [global flags] history                    every change of primary
  ramctl [global flags] backup create NAME [--node N] [--no-wait]
                                                   base backup (by node N of its own server;
                                                   default: the node asked, of the primary)
  ramctl [global flags] backup list                every node's backups
  ramctl [global flags] backup restore NAME --target N [--source N] [--force] [--no-wait]
                                                   re-create replica N from the backup
  ramctl [global flags] backup delete NAME [--node N] [--force]
  ramctl [global flags] keys list | install KEY | use KEY | remove KEY
                                                   gossip keyring of every member (rotation: install,
                                                   use, remove; KEY '-' reads stdin; use and remove
                                                   also take the fingerprint keys list shows)
  ramctl [global flags] version

Global flags:
  --url URL      API of any node; repeat or comma-separate to try several ($RAMCTL_URL)
  --token T      bearer token ($RAMD_TOKEN)
  --json         print the API's JSON
  --timeout D    per-request timeout (default 5s)
  --cacert FILE  CAs (PEM) to trust for https URLs; default the system's ($RAMCTL_CACERT)
  --cert FILE    client certificate (PEM) for APIs that verify clients ($RAMCTL_CERT)
  --key FILE     its private key ($RAMCTL_KEY)

backup create and restore show a progress bar on a terminal and plain
lines otherwise.
`

type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }
func (u *urlList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*u = append(*u, s)
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ramctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var urls urlList
	fs.Var(&urls, "url", "API URL of any node")
	token := fs.String("token", os.Getenv("RAMD_TOKEN"), "bearer token")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout")
	cacert := fs.String("cacert", os.Getenv("RAMCTL_CACERT"), "CA bundle for https")
	cert := fs.String("cert", os.Getenv("RAMCTL_CERT"), "client certificate")
	key := fs.String("key", os.Getenv("RAMCTL_KEY"), "client certificate key")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "ramctl: %v\n", err)
		return 64
	}
	if len(urls) == 0 {
		if env := os.Getenv("RAMCTL_URL"); env != "" {
			urls.Set(env)
		} else {
			urls = urlList{"http://127.0.0.1:8080"}
		}
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return 64
	}
	hc, err := apiclient.TLSFiles{CAFile: *cacert, CertFile: *cert, KeyFile: *key}.HTTPClient()
	if err != nil {
		fmt.Fprintf(stderr, "ramctl: %v\n", err)
		return 64
	}
	c := &apiclient.Client{URLs: urls, Token: *token, Timeout: *timeout, HTTP: hc}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	code := 1
	switch cmd {
	case "list", "status":
		err = list(c, rest, *asJSON, stdout)
	case "health":
		code, err = health(c, *asJSON, stdout)
	case "switchover":
		if len(rest) > 0 && rest[0] == "cancel" {
			err = cancelSwitchover(c, stdout)
		} else {
			err = switchover(c, rest, *asJSON, os.Stdin, stdout)
		}
	case "failover":
		err = failover(c, rest, *asJSON, os.Stdin, stdout)
	case "maintenance":
		err = maintenance(c, rest, *asJSON, stdout)
	case "replication":
		err = replication(c, rest, *asJSON, stdout)
	case "node":
		err = node(c, rest, *asJSON, os.Stdin, stdout)
	case "config":
		err = config(c, rest, *asJSON, stdout)
	case "restart":
		err = restart(c, rest, os.Stdin, stdout)
	case "backup":
		err = backup(c, rest, *asJSON, os.Stdin, stdout)
	case "keys":
		err = keys(c, rest, *asJSON, os.Stdin, stdout)
	case "history":
		err = history(c, *asJSON, stdout)
	case "version":
		fmt.Fprintln(stdout, "ramctl (ramd tools)")
	case "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "ramctl: unknown command %q (run 'ramctl help')\n", cmd)
		return 64
	}
	if err != nil {
		fmt.Fprintf(stderr, "ramctl: %v\n", err)
		return code
	}
	return 0
}

func list(c *apiclient.Client, args []string, asJSON bool, out io.Writer) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	watch := fs.Bool("w", false, "watch: refresh until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "refresh interval with -w")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for {
		r, err := c.Get(context.Background(), "/api/v1/cluster/status")
		if err != nil {
			return err
		}
		if asJSON {
			out.Write(append(r.Body, '\n'))
		} else {
			var s apiclient.Status
			if err := r.Decode(&s); err != nil {
				return err
			}
			if *watch {
				fmt.Fprint(out, "\033[H\033[2J")
				fmt.Fprintln(out, time.Now().Format(time.RFC3339), "from", r.URL)
			}
			apiclient.PrintStatus(out, s)
		}
		if !*watch {
			return nil
		}
		time.Sleep(*interval)
	}
}

func health(c *apiclient.Client, asJSON bool, out io.Writer) (int, error) {
	r, err := c.Get(context.Background(), "/api/v1/cluster/health")
	if err != nil {
		return 1, err
	}
	var h apiclient.Health
	if err := r.Decode(&h); err != nil {
		return 1, err
	}
	if asJSON {
		out.Write(append(r.Body, '\n'))
	} else {
		apiclient.PrintHealth(out, h)
	}
	switch h.Status {
	case "healthy":
		return 0, nil
	case "degraded":
		return 1, errors.New("cluster is degraded")
	}
	return 2, fmt.Errorf("cluster is %s", h.Status)
}
