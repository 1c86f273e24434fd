package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ramd/ramd/internal/apiclient"
)

// opTimeout is the least time given to an operation that waits for the
// cluster (a switchover waits up to 30 s on the server).
const opTimeout = 40 * time.Second

// confirm asks on a terminal; elsewhere (scripts, pipes) it requires
// --force so that nothing destructive happens unattended by accident.
func confirm(force bool, question string, in io.Reader, out io.Writer) error {
	if force {
		return nil
	}
	if f, ok := in.(*os.File); !ok || !isTerminal(f) {
		return errors.New("refusing without --force (not a terminal, cannot ask for confirmation)")
	}
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return errors.New("aborted")
	}
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// call sends a mutating request and turns a refusal into its message.
func call(c *apiclient.Client, method, path string, body any) (apiclient.Response, error) {
	cc := *c
	cc.Timeout = max(c.Timeout, opTimeout)
	r, err := cc.Do(context.Background(), method, path, body)
	if err != nil {
		return r, err
	}
	if r.Status >= 400 {
		msg := r.Envelope.Message
		if msg == "" {
			msg = http.StatusText(r.Status)
		}
		return r, fmt.Errorf("%s (HTTP %d from %s)", msg, r.Status, r.URL)
	}
	return r, nil
}

func switchover(c *apiclient.Client, args []string, asJSON bool, stdin io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("switchover", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cand := fs.Int("candidate", 0, "node id to promote (default: the best replica)")
	at := fs.String("at", "", "schedule for this time (RFC 3339)")
	force := fs.Bool("force", false, "do not ask for confirmation")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("switchover: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("switchover: unexpected argument %q", fs.Arg(0))
	}
	if *cand < 0 {
		return fmt.Errorf("switchover: --candidate %d is not a node id", *cand)
	}
	body := map[string]any{}
	target := "the best replica"
	if *cand > 0 {
		body["candidate"] = *cand
		target = fmt.Sprintf("node %d", *cand)
	}
	if *at != "" {
		if _, err := time.Parse(time.RFC3339, *at); err != nil {
			return fmt.Errorf("switchover: --at %q is not an RFC 3339 time (e.g. 2026-11-26T03:00:00Z)", *at)
		}
		body["scheduled_at"] = *at
	}
	if err := confirm(*force, fmt.Sprintf("Switch the primary over to %s? Writes pause for about a second.", target), stdin, out); err != nil {
		return err
	}
	r, err := call(c, http.MethodPost, "/api/v1/cluster/switchover", body)
	if err != nil {
		return err
	}
	return printResult(out, asJSON, r.Body, r.Envelope.Message)
}

func failover(c *apiclient.Client, args []string, asJSON bool, stdin io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cand := fs.Int("candidate", 0, "node id to promote (required)")
	allow := fs.Bool("allow-data-loss", false, "promote even if acknowledged commits may be lost")
	force := fs.Bool("force", false, "do not ask for confirmation")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("failover: unexpected argument %q", fs.Arg(0))
	}
	if *cand <= 0 {
		return errors.New("failover: --candidate N (the node to promote) is required")
	}
	q := fmt.Sprintf("Promote node %d? Use this only when the primary has failed.", *cand)
	if *allow {
		q = fmt.Sprintf("Promote node %d even if acknowledged commits are lost?", *cand)
	}
	if err := confirm(*force, q, stdin, out); err != nil {
		return err
	}
	r, err := call(c, http.MethodPost, "/api/v1/cluster/failover", map[string]any{"candidate": *cand, "allow_data_loss": *allow})
	if err != nil {
		return err
	}
	return printResult(out, asJSON, r.Body, r.Envelope.Message)
}

func replication(c *apiclient.Client, args []string, asJSON bool, out io.Writer) error {
	if len(args) == 1 && args[0] == "status" {
		r, err := call(c, http.MethodGet, "/api/v1/replication/status", nil)
		if err != nil {
			return err
		}
		if asJSON {
			out.Write(append(r.Body, '\n'))
			return nil
		}
		var rs struct {
			Standbys []struct {
				NodeID         int    `json:"node_id"`
				Name           string `json:"name"`
				State          string `json:"state"`
				SyncState      string `json:"sync_state"`
				ReplayLagBytes uint64 `json:"replay_lag_bytes"`
				Detached       bool   `json:"detached"`
			} `json:"standbys"`
		}
		if err := r.Decode(&rs); err != nil {
			return err
		}
		fmt.Fprintf(out, "%-6s %-12s %-12s %-10s %-12s %s\n", "NODE", "NAME", "STATE", "SYNC", "REPLAY LAG", "DETACHED")
		for _, s := range rs.Standbys {
			fmt.Fprintf(out, "%-6d %-12s %-12s %-10s %-12s %v\n", s.NodeID, s.Name, s.State, s.SyncState, apiclient.HumanBytes(s.ReplayLagBytes), s.Detached)
		}
		return nil
	}
	if len(args) != 2 || (args[0] != "start" && args[0] != "stop") {
		return errors.New("replication: say start NODE, stop NODE or status")
	}
	node, err := strconv.Atoi(args[1])
	if err != nil || node <= 0 {
		return fmt.Errorf("replication: %q is not a node id", args[1])
	}
	r, err := call(c, http.MethodPost, "/api/v1/replication/"+args[0], map[string]int{"node_id": node})
	if err != nil {
		return err
	}
	return printResult(out, asJSON, r.Body, r.Envelope.Message)
}

func node(c *apiclient.Client, args []string, asJSON bool, stdin io.Reader, out io.Writer) error {
	if len(args) < 2 || (args[0] != "add" && args[0] != "remove") {
		return errors.New("node: say add ID --address HOST --port PORT, or remove ID [--force]")
	}
	id, err := strconv.Atoi(args[1])
	if err != nil || id <= 0 {
		return fmt.Errorf("node: %q is not a node id", args[1])
	}
	fs := flag.NewFlagSet("node "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("address", "", "the node's gossip host ([mesh] advertise_addr or bind_addr)")
	port := fs.Int("port", 7946, "the node's gossip port ([mesh] bind_port)")
	force := fs.Bool("force", false, "do not ask for confirmation")
	if err := fs.Parse(args[2:]); err != nil {
		return fmt.Errorf("node %s: %w", args[0], err)
	}
	var r apiclient.Response
	if args[0] == "add" {
		if *addr == "" {
			return errors.New("node add: --address is required")
		}
		r, err = call(c, http.MethodPost, "/api/v1/cluster/add-node", map[string]any{"node_id": id, "address": *addr, "port": *port})
	} else {
		if err := confirm(*force, fmt.Sprintf("Remove node %d from the cluster?", id), stdin, out); err != nil {
			return err
		}
		r, err = call(c, http.MethodDelete, "/api/v1/cluster/nodes/"+strconv.Itoa(id), nil)
	}
	if err != nil {
		return err
	}
	return printResult(out, asJSON, r.Body, r.Envelope.Message)
}

func cancelSwitchover(c *apiclient.Client, out io.Writer) error {
	r, err := call(c, http.MethodDelete, "/api/v1/cluster/switchover", nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, r.Envelope.Message)
	return nil
}

func maintenance(c *apiclient.Client, args []string, asJSON bool, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("maintenance: say on, off or status")
	}
	var r apiclient.Response
	var err error
	switch args[0] {
	case "on", "off":
		r, err = call(c, http.MethodPost, "/api/v1/cluster/maintenance", map[string]bool{"enabled": args[0] == "on"})
	case "status":
		r, err = call(c, http.MethodGet, "/api/v1/cluster/maintenance", nil)
	default:
		return fmt.Errorf("maintenance: %q is not on, off or status", args[0])
	}
	if err != nil {
		return err
	}
	if asJSON {
		out.Write(append(r.Body, '\n'))
		return nil
	}
	var m struct {
		Enabled bool `json:"enabled"`
	}
	if err := r.Decode(&m); err != nil {
		return err
	}
	if r.Envelope.Message != "" {
		fmt.Fprintln(out, r.Envelope.Message)
	} else if m.Enabled {
		fmt.Fprintln(out, "maintenance mode: on (no automatic failover)")
	} else {
		fmt.Fprintln(out, "maintenance mode: off")
	}
	return nil
}

func history(c *apiclient.Client, asJSON bool, out io.Writer) error {
	r, err := call(c, http.MethodGet, "/api/v1/cluster/history", nil)
	if err != nil {
		return err
	}
	if asJSON {
		out.Write(append(r.Body, '\n'))
		return nil
	}
	var hs []struct {
		Token    uint64 `json:"fencing_token"`
		Old      int    `json:"old_primary"`
		New      int    `json:"new_primary"`
		Reason   string `json:"reason"`
		Timeline uint32 `json:"timeline"`
		LSN      string `json:"lsn"`
		Time     string `json:"time"`
	}
	if err := r.Decode(&hs); err != nil {
		return err
	}
	fmt.Fprintf(out, "%-6s %-4s %-4s %-9s %-12s %-25s %s\n", "TOKEN", "OLD", "NEW", "TIMELINE", "LSN", "TIME", "REASON")
	for _, h := range hs {
		old := "-"
		if h.Old != 0 {
			old = strconv.Itoa(h.Old)
		}
		fmt.Fprintf(out, "%-6d %-4s %-4d %-9d %-12s %-25s %s\n", h.Token, old, h.New, h.Timeline, h.LSN, h.Time, h.Reason)
	}
	return nil
}
