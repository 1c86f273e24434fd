package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/ramd/ramd/internal/apiclient"
)

// config: show (this node's effective configuration with sources, or
// --cluster for the overrides), set KEY=VALUE..., unset KEY..., edit (the
// overrides in $EDITOR, as JSON).
func config(c *apiclient.Client, args []string, asJSON bool, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("config: say show [--cluster], set KEY=VALUE..., unset KEY... or edit")
	}
	switch args[0] {
	case "show":
		cluster := len(args) > 1 && args[1] == "--cluster"
		path := "/api/v1/config"
		if cluster {
			path = "/api/v1/cluster/config"
		}
		r, err := call(c, http.MethodGet, path, nil)
		if err != nil {
			return err
		}
		if asJSON {
			out.Write(append(r.Body, '\n'))
			return nil
		}
		if cluster {
			return printClusterConfig(r, out)
		}
		var entries []struct {
			Key    string `json:"key"`
			Value  any    `json:"value"`
			Source string `json:"source"`
		}
		if err := r.Decode(&entries); err != nil {
			return err
		}
		for _, e := range entries {
			v, _ := json.Marshal(e.Value)
			fmt.Fprintf(out, "%-40s %-40s %s\n", e.Key, v, e.Source)
		}
		return nil
	case "set", "unset":
		changes := map[string]*string{}
		for _, a := range args[1:] {
			if args[0] == "unset" {
				changes[a] = nil
				continue
			}
			k, v, ok := strings.Cut(a, "=")
			if !ok || k == "" {
				return fmt.Errorf("config set: %q is not KEY=VALUE", a)
			}
			changes[k] = &v
		}
		if len(changes) == 0 {
			return fmt.Errorf("config %s: name at least one key", args[0])
		}
		return patchConfig(c, changes, asJSON, out)
	case "edit":
		return editConfig(c, asJSON, out)
	}
	return fmt.Errorf("config: %q is not show, set, unset or edit", args[0])
}

func patchConfig(c *apiclient.Client, changes map[string]*string, asJSON bool, out io.Writer) error {
	r, err := call(c, http.MethodPatch, "/api/v1/cluster/config", changes)
	if err != nil {
		return err
	}
	return printResult(out, asJSON, r.Body, r.Envelope.Message)
}

func printClusterConfig(r apiclient.Response, out io.Writer) error {
	var info struct {
		Overrides      map[string]string `json:"overrides"`
		PendingRestart []string          `json:"pending_restart"`
	}
	if err := r.Decode(&info); err != nil {
		return err
	}
	keys := make([]string, 0, len(info.Overrides))
	for k := range info.Overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		fmt.Fprintln(out, "no cluster-wide overrides")
	}
	for _, k := range keys {
		fmt.Fprintf(out, "%s = %s\n", k, strconv.Quote(info.Overrides[k]))
	}
	if len(info.PendingRestart) > 0 {
		fmt.Fprintf(out, "waiting for a PostgreSQL restart on the node asked: %s\n", strings.Join(info.PendingRestart, ", "))
	}
	return nil
}

// editConfig opens the overrides in $EDITOR (as JSON) and patches what
// changed.
func editConfig(c *apiclient.Client, asJSON bool, out io.Writer) error {
	r, err := call(c, http.MethodGet, "/api/v1/cluster/config", nil)
	if err != nil {
		return err
	}
	var info struct {
		Overrides map[string]string `json:"overrides"`
	}
	if err := r.Decode(&info); err != nil {
		return err
	}
	before, _ := json.MarshalIndent(info.Overrides, "", "  ")
	f, err := os.CreateTemp("", "ramd-cluster-config-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	f.Write(append(before, '\n'))
	f.Close()
	editor := os.Getenv("EDITOR")
	if editor == "" {
		editor = "vi"
	}
	cmd := exec.CommandContext(context.Background(), "sh", "-c", editor+` "$1"`, "sh", f.Name())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("config edit: %s: %w", editor, err)
	}
	after, err := os.ReadFile(f.Name())
	if err != nil {
		return err
	}
	var edited map[string]string
	if err := json.Unmarshal(after, &edited); err != nil {
		return fmt.Errorf("config edit: not a JSON object of strings: %w", err)
	}
	changes := map[string]*string{}
	for k, v := range edited {
		if old, ok := info.Overrides[k]; !ok || old != v {
			changes[k] = &v
		}
	}
	for k := range info.Overrides {
		if _, ok := edited[k]; !ok {
			changes[k] = nil
		}
	}
	if len(changes) == 0 || bytes.Equal(bytes.TrimSpace(before), bytes.TrimSpace(after)) {
		fmt.Fprintln(out, "nothing changed")
		return nil
	}
	return patchConfig(c, changes, asJSON, out)
}

// restart restarts NODE's PostgreSQL through that node's own API.
func restart(c *apiclient.Client, args []string, stdin io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("restart", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	allow := fs.Bool("allow-primary", false, "restart even if NODE is the primary (writes stop meanwhile)")
	force := fs.Bool("force", false, "do not ask for confirmation")
	if len(args) == 0 {
		return errors.New("restart: name the node: restart NODE [--allow-primary] [--force]")
	}
	id, err := strconv.Atoi(args[0])
	if err != nil || id <= 0 {
		return fmt.Errorf("restart: %q is not a node id", args[0])
	}
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	r, err := call(c, http.MethodGet, "/api/v1/cluster/status", nil)
	if err != nil {
		return err
	}
	var s apiclient.Status
	if err := r.Decode(&s); err != nil {
		return err
	}
	n, ok := s.Node(id)
	if !ok || n.APIURL == "" {
		return fmt.Errorf("restart: node %d is not in the cluster (or has no API address)", id)
	}
	if err := confirm(*force, fmt.Sprintf("Restart PostgreSQL on node %d (%s)?", id, n.Name), stdin, out); err != nil {
		return err
	}
	nc := *c
	nc.URLs = []string{n.APIURL}
	r, err = call(&nc, http.MethodPost, "/api/v1/node/restart", map[string]bool{"allow_primary": *allow})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "node %d: %s\n", id, r.Envelope.Message)
	return nil
}
