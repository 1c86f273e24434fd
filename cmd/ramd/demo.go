package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ramd/ramd/internal/cluster"
	"github.com/ramd/ramd/pg"
)

// cmdDemo runs a local N-node cluster on loopback until Ctrl-C.
func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo")
	nodes := fs.Int("nodes", 3, "number of nodes (1-9)")
	dir := fs.String("dir", "", "directory for the nodes' files (default: a temporary directory, removed on exit)")
	pgPort := fs.Int("pg-port", 5433, "PostgreSQL port of node 1 (node N uses pg-port+N-1)")
	apiPort := fs.Int("api-port", 8081, "API port of node 1")
	metricsPort := fs.Int("metrics-port", 9091, "metrics port of node 1")
	meshPort := fs.Int("mesh-port", 7947, "gossip port of node 1")
	wait := fs.Duration("timeout", 120*time.Second, "how long to wait for the cluster to form")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *nodes < 1 || *nodes > 9 {
		return usageError{fmt.Sprintf("--nodes %d: want 1 to 9", *nodes)}
	}
	if _, err := pg.FindBinDir(""); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	base, temp := *dir, false
	if base == "" {
		if base, err = os.MkdirTemp("", "ramd-demo-"); err != nil {
			return err
		}
		temp = true
	}
	c, err := cluster.Prepare(cluster.Options{
		Nodes: *nodes, Dir: base, Binary: self, BasePorts: true,
		PGBase: *pgPort, APIBase: *apiPort, MetricsBase: *metricsPort, MeshBase: *meshPort,
	})
	if err != nil {
		return err
	}
	cleanup := func() {
		fmt.Fprintln(stdout, "\nstopping the cluster...")
		if err := c.Close(); err != nil {
			fmt.Fprintf(stderr, "ramd: %v\n", err)
		}
		if temp {
			os.RemoveAll(base)
			fmt.Fprintf(stdout, "removed %s\n", base)
		} else {
			fmt.Fprintf(stdout, "kept %s\n", base)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(stdout, "starting %d nodes under %s ...\n", *nodes, base)
	began := time.Now()
	if err := c.Start(); err != nil {
		cleanup()
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, *wait)
	st, err := c.WaitFormed(wctx)
	wcancel()
	if err != nil {
		cleanup()
		return fmt.Errorf("%v (daemon logs are in %s/node*/ramd.log)", err, base)
	}
	fmt.Fprintf(stdout, "cluster formed in %.1f s\n\n", time.Since(began).Seconds())
	printDemoTable(stdout, c, st)

	live := isTerminal(stdout)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			cleanup()
			return nil
		case <-tick.C:
			if live {
				fmt.Fprintf(stdout, "\r%-100s", demoStatusLine(ctx, c))
			}
		}
	}
}

func printDemoTable(out io.Writer, c *cluster.Cluster, st cluster.Status) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tPOSTGRESQL\tAPI\tMETRICS\tLOG")
	var primary *cluster.Node
	for _, n := range c.Nodes {
		ns, _ := st.Node(n.ID)
		if n.ID == st.PrimaryNodeID {
			primary = n
		}
		fmt.Fprintf(tw, "%s\t%s\t127.0.0.1:%d\t%s\thttp://127.0.0.1:%d/metrics\t%s\n", n.Name, ns.Role, n.PGPort, n.APIURL(), n.MetricsPort, n.LogPath)
	}
	tw.Flush()
	if primary != nil {
		fmt.Fprintf(out, "\nConnect to the primary:\n  PGPASSWORD=%s psql -h 127.0.0.1 -p %d -U postgres postgres\n", c.Password, primary.PGPort)
		// The token travels in the fragment, which the browser never
		// sends; the page moves it into the tab's session storage.
		fmt.Fprintf(out, "Live cluster page (any node's /ui/; this link carries the demo's token):\n  %s/ui/#token=%s\n", c.Nodes[0].APIURL(), c.Token)
		fmt.Fprintf(out, "Cluster status from any node:\n  curl -s -H 'Authorization: Bearer %s' %s/api/v1/cluster/status\n", c.Token, c.Nodes[len(c.Nodes)-1].APIURL())
		fmt.Fprintf(out, "Switch the primary over (the demo's admin token is %s):\n  ramctl --url %s --token %s switchover --force\n", c.Token, c.Nodes[len(c.Nodes)-1].APIURL(), c.Token)
	}
	fmt.Fprintln(out, "\nPress Ctrl-C to stop the cluster.")
}

// demoStatusLine is a one-line summary from the first node that answers.
func demoStatusLine(ctx context.Context, c *cluster.Cluster) string {
	for _, n := range c.Nodes {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := n.Status(cctx)
		cancel()
		if err != nil {
			continue
		}
		sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].NodeID < st.Nodes[j].NodeID })
		var parts []string
		for _, ns := range st.Nodes {
			parts = append(parts, fmt.Sprintf("%s:%s/%s lag=%dB", ns.Name, ns.Role, ns.State, ns.LagBytes))
		}
		return time.Now().Format("15:04:05") + " " + strings.Join(parts, "  ")
	}
	return time.Now().Format("15:04:05") + " no node answers"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
