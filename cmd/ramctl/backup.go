package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ramd/ramd/internal/apiclient"
)

// backupPoll is how often create and restore ask for progress.
const backupPoll = 500 * time.Millisecond

// backupInfo and restoreInfo mirror api.BackupInfo and api.RestoreInfo.
type backupInfo struct {
	Name       string  `json:"name"`
	NodeID     int     `json:"node_id"`
	SourceNode int     `json:"source_node_id"`
	SourceRole string  `json:"source_role"`
	Status     string  `json:"status"`
	Error      string  `json:"error"`
	Progress   float64 `json:"progress"`
	SizeBytes  int64   `json:"size_bytes"`
	StartLSN   string  `json:"start_lsn"`
	EndLSN     string  `json:"end_lsn"`
	Timeline   uint32  `json:"timeline"`
	Created    string  `json:"created"`
	Verified   bool    `json:"verified"`
}

type restoreInfo struct {
	BackupName string  `json:"backup_name"`
	HolderNode int     `json:"holder_node"`
	TargetNode int     `json:"target_node"`
	Status     string  `json:"status"`
	Phase      string  `json:"phase"`
	Error      string  `json:"error"`
	Progress   float64 `json:"progress"`
	MovedAside string  `json:"moved_aside"`
}

func backup(c *apiclient.Client, args []string, asJSON bool, stdin io.Reader, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("backup: say create, list, restore or delete")
	}
	switch args[0] {
	case "create":
		return backupCreate(c, args[1:], asJSON, out)
	case "list":
		return backupList(c, args[1:], asJSON, out)
	case "restore":
		return backupRestore(c, args[1:], asJSON, stdin, out)
	case "delete":
		return backupDelete(c, args[1:], asJSON, stdin, out)
	}
	return fmt.Errorf("backup: %q is not create, list, restore or delete", args[0])
}

// nameAndFlags parses "NAME [flags]" or "[flags] NAME".
func nameAndFlags(fs *flag.FlagSet, args []string) (string, error) {
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", fmt.Errorf("backup %s: %w", fs.Name(), err)
	}
	rest := fs.Args()
	if name == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("backup %s: unexpected argument %q", fs.Name(), rest[0])
	}
	if name == "" {
		return "", fmt.Errorf("backup %s: a backup name is required", fs.Name())
	}
	return name, nil
}

func backupCreate(c *apiclient.Client, args []string, asJSON bool, out io.Writer) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	node := fs.Int("node", 0, "node that backs up its own server and keeps the backup (default: the node asked backs up the primary)")
	noWait := fs.Bool("no-wait", false, "return once the backup started")
	name, err := nameAndFlags(fs, args)
	if err != nil {
		return err
	}
	if *node < 0 {
		return fmt.Errorf("backup create: --node %d is not a node id", *node)
	}
	body := map[string]any{"backup_name": name}
	if *node > 0 {
		body["node_id"] = *node
	}
	r, err := call(c, http.MethodPost, "/api/v1/backup/create", body)
	if err != nil {
		return err
	}
	var b backupInfo
	if err := r.Decode(&b); err != nil {
		return err
	}
	if *noWait {
		return printResult(out, asJSON, r.Body, r.Envelope.Message)
	}
	if !asJSON {
		fmt.Fprintln(out, r.Envelope.Message)
	}
	bar := newProgress(out, asJSON)
	path := "/api/v1/backup/" + url.PathEscape(name) + "?node_id=" + strconv.Itoa(b.NodeID)
	for {
		time.Sleep(backupPoll)
		r, err = call(c, http.MethodGet, path, nil)
		if err != nil {
			bar.done()
			return err
		}
		if err := r.Decode(&b); err != nil {
			bar.done()
			return err
		}
		if b.Status != "running" {
			break
		}
		bar.show(b.Progress, "backup "+name)
	}
	if b.Status == "done" {
		bar.show(100, "backup "+name)
	}
	bar.done()
	if asJSON {
		out.Write(append(r.Body, '\n'))
	}
	if b.Status != "done" {
		return fmt.Errorf("backup %s failed on node %d: %s", name, b.NodeID, b.Error)
	}
	if !asJSON {
		fmt.Fprintf(out, "backup %s done on node %d: %s, WAL %s-%s on timeline %d, verified\n", name, b.NodeID, size(b.SizeBytes), b.StartLSN, b.EndLSN, b.Timeline)
	}
	return nil
}

func backupList(c *apiclient.Client, args []string, asJSON bool, out io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("backup list: unexpected argument %q", args[0])
	}
	r, err := call(c, http.MethodGet, "/api/v1/backup/list", nil)
	if err != nil {
		return err
	}
	if asJSON {
		out.Write(append(r.Body, '\n'))
		return nil
	}
	var l struct {
		Backups     []backupInfo `json:"backups"`
		Unreachable []struct {
			NodeID int    `json:"node_id"`
			Error  string `json:"error"`
		} `json:"unreachable"`
	}
	if err := r.Decode(&l); err != nil {
		return err
	}
	fmt.Fprintf(out, "%-24s %-4s %-14s %-9s %-12s %-12s %-3s %-8s %-20s %s\n", "NAME", "NODE", "SOURCE", "SIZE", "START LSN", "END LSN", "TL", "VERIFIED", "CREATED", "STATUS")
	for _, b := range l.Backups {
		status := b.Status
		switch {
		case b.Status == "running":
			status = fmt.Sprintf("running %.0f%%", b.Progress)
		case b.Error != "":
			status += ": " + b.Error
		}
		created := b.Created
		if t, err := time.Parse(time.RFC3339Nano, b.Created); err == nil {
			created = t.UTC().Format("2006-01-02 15:04:05Z")
		}
		src := fmt.Sprintf("node %d", b.SourceNode)
		if b.SourceRole != "" {
			src += " (" + b.SourceRole[:1] + ")"
		}
		fmt.Fprintf(out, "%-24s %-4d %-14s %-9s %-12s %-12s %-3s %-8v %-20s %s\n", b.Name, b.NodeID, src, size(b.SizeBytes),
			dash(b.StartLSN), dash(b.EndLSN), dash(tl(b.Timeline)), b.Verified, created, status)
	}
	for _, u := range l.Unreachable {
		fmt.Fprintf(out, "node %d did not answer: %s\n", u.NodeID, u.Error)
	}
	return nil
}

func backupRestore(c *apiclient.Client, args []string, asJSON bool, stdin io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	target := fs.Int("target", 0, "replica to restore (required)")
	source := fs.Int("source", 0, "node that holds the backup (default: found)")
	force := fs.Bool("force", false, "do not ask for confirmation")
	noWait := fs.Bool("no-wait", false, "return once the restore started")
	name, err := nameAndFlags(fs, args)
	if err != nil {
		return err
	}
	if *target <= 0 {
		return errors.New("backup restore: --target N (the replica to restore) is required")
	}
	if *source < 0 {
		return fmt.Errorf("backup restore: --source %d is not a node id", *source)
	}
	q := fmt.Sprintf("Replace node %d's data directory with backup %s? The current one is moved aside, not deleted.", *target, name)
	if err := confirm(*force, q, stdin, out); err != nil {
		return err
	}
	body := map[string]any{"backup_name": name, "target_node": *target}
	if *source > 0 {
		body["source_node"] = *source
	}
	r, err := call(c, http.MethodPost, "/api/v1/backup/restore", body)
	if err != nil {
		return err
	}
	if *noWait {
		return printResult(out, asJSON, r.Body, r.Envelope.Message)
	}
	if !asJSON {
		fmt.Fprintln(out, r.Envelope.Message)
	}
	bar := newProgress(out, asJSON)
	var ri restoreInfo
	path := "/api/v1/backup/restore?node_id=" + strconv.Itoa(*target)
	for {
		time.Sleep(backupPoll)
		r, err = call(c, http.MethodGet, path, nil)
		if err != nil {
			// The target's API stays up while its PostgreSQL restarts;
			// a failed poll is worth one more try.
			var ue error = err
			time.Sleep(backupPoll)
			if r, err = call(c, http.MethodGet, path, nil); err != nil {
				bar.done()
				return ue
			}
		}
		if err := r.Decode(&ri); err != nil {
			bar.done()
			return err
		}
		if ri.Status != "running" {
			break
		}
		bar.show(ri.Progress, ri.Phase)
	}
	bar.done()
	if asJSON {
		out.Write(append(r.Body, '\n'))
	}
	if ri.Status != "done" {
		return fmt.Errorf("restore of %s onto node %d failed: %s", name, *target, ri.Error)
	}
	if !asJSON {
		fmt.Fprintf(out, "node %d restored from backup %s: %s; old data directory kept at %s\n", *target, name, ri.Phase, dash(ri.MovedAside))
	}
	return nil
}

func backupDelete(c *apiclient.Client, args []string, asJSON bool, stdin io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	node := fs.Int("node", 0, "node that holds the backup (default: found)")
	force := fs.Bool("force", false, "do not ask for confirmation")
	name, err := nameAndFlags(fs, args)
	if err != nil {
		return err
	}
	if *node < 0 {
		return fmt.Errorf("backup delete: --node %d is not a node id", *node)
	}
	if err := confirm(*force, fmt.Sprintf("Delete backup %s for good?", name), stdin, out); err != nil {
		return err
	}
	path := "/api/v1/backup/" + url.PathEscape(name)
	if *node > 0 {
		path += "?node_id=" + strconv.Itoa(*node)
	}
	r, err := call(c, http.MethodDelete, path, nil)
	if err != nil {
		return err
	}
	return printResult(out, asJSON, r.Body, r.Envelope.Message)
}

func printResult(out io.Writer, asJSON bool, body []byte, msg string) error {
	if asJSON {
		out.Write(append(body, '\n'))
	} else {
		fmt.Fprintln(out, msg)
	}
	return nil
}

// progress shows a bar redrawn in place on a terminal, and otherwise a
// plain line whenever the percentage or the phase changes.
type progress struct {
	out      io.Writer
	tty      bool
	quiet    bool
	last     string
	lastPct  int
	anyShown bool
}

func newProgress(out io.Writer, quiet bool) *progress {
	f, ok := out.(*os.File)
	return &progress{out: out, tty: ok && isTerminal(f), quiet: quiet, lastPct: -1}
}

func (p *progress) show(pct float64, what string) {
	if p.quiet {
		return
	}
	n := int(pct)
	if p.tty {
		const width = 30
		fill := n * width / 100
		fmt.Fprintf(p.out, "\r[%s%s] %3d%% %-50.50s", strings.Repeat("#", fill), strings.Repeat(".", width-fill), n, what)
		p.anyShown = true
		return
	}
	if n == p.lastPct && what == p.last {
		return
	}
	p.lastPct, p.last = n, what
	fmt.Fprintf(p.out, "%3d%% %s\n", n, what)
}

func (p *progress) done() {
	if p.tty && p.anyShown {
		fmt.Fprintln(p.out)
	}
}

func size(b int64) string { return apiclient.HumanBytes(uint64(max(b, 0))) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tl(t uint32) string {
	if t == 0 {
		return ""
	}
	return strconv.Itoa(int(t))
}
