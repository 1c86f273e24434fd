package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Writer inserts a row every interval through a multi-host connection
// string with target_session_attrs=read-write (what an application does)
// and records every acknowledged id, when, and which server acknowledged
// it. The table must exist: CREATE TABLE <Table> (id int PRIMARY KEY).
type Writer struct {
	DSN      string
	Table    string
	Interval time.Duration

	mu    sync.Mutex
	acked map[int]Ack
	next  int
}

// Ack is one acknowledged write.
type Ack struct {
	At   time.Time
	Port int
}

// NewWriter returns a writer for the cluster's nodes.
func (c *Cluster) NewWriter(table string, every time.Duration) *Writer {
	return &Writer{DSN: c.MultiHostDSN(), Table: table, Interval: every, acked: map[int]Ack{}}
}

// MultiHostDSN lists every node, for target_session_attrs=read-write.
func (c *Cluster) MultiHostDSN() string {
	var hosts, ports []string
	for _, n := range c.Nodes {
		hosts = append(hosts, n.Addr)
		ports = append(ports, strconv.Itoa(n.PGPort))
	}
	return fmt.Sprintf("host=%s port=%s user=postgres password=%s dbname=postgres sslmode=disable connect_timeout=1 target_session_attrs=read-write",
		strings.Join(hosts, ","), strings.Join(ports, ","), c.Password)
}

// Run writes until ctx ends.
func (w *Writer) Run(ctx context.Context) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	insert := fmt.Sprintf("INSERT INTO %s (id) VALUES ($1) RETURNING inet_server_port()", pgx.Identifier{w.Table}.Sanitize())
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			c, err := pgx.Connect(cctx, w.DSN)
			cancel()
			if err != nil {
				continue
			}
			conn = c
		}
		w.mu.Lock()
		w.next++
		id := w.next
		w.mu.Unlock()
		ictx, cancel := context.WithTimeout(ctx, time.Second)
		var port int
		err := conn.QueryRow(ictx, insert, id).Scan(&port)
		cancel()
		if err != nil {
			conn.Close(context.Background())
			conn = nil
			continue
		}
		w.mu.Lock()
		w.acked[id] = Ack{At: time.Now(), Port: port}
		w.mu.Unlock()
	}
}

// FirstAckAfter returns when the server on port first acknowledged a
// write after t.
func (w *Writer) FirstAckAfter(t time.Time, port int) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, a := range w.acked {
		if a.Port == port && a.At.After(t) && (first.IsZero() || a.At.Before(first)) {
			first = a.At
		}
	}
	return first, !first.IsZero()
}

// LastAckBefore returns when the server on port last acknowledged a write
// before t.
func (w *Writer) LastAckBefore(t time.Time, port int) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last time.Time
	for _, a := range w.acked {
		if a.Port == port && a.At.Before(t) && a.At.After(last) {
			last = a.At
		}
	}
	return last, !last.IsZero()
}

// AcksAfter counts writes the server on port acknowledged after t.
func (w *Writer) AcksAfter(t time.Time, port int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.acked {
		if a.Port == port && a.At.After(t) {
			n++
		}
	}
	return n
}

// Acked returns a copy of the acknowledged ids.
func (w *Writer) Acked() map[int]Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int]Ack, len(w.acked))
	for k, v := range w.acked {
		out[k] = v
	}
	return out
}

// Lost counts acknowledged ids missing from the table on node n.
func (w *Writer) Lost(ctx context.Context, n *Node) (lost, acked int, err error) {
	present, err := n.IDs(ctx, w.Table)
	if err != nil {
		return 0, 0, err
	}
	for id := range w.Acked() {
		acked++
		if !present[id] {
			lost++
		}
	}
	return lost, acked, nil
}

// IDs returns the ids present in table on node n (an "id" column).
func (n *Node) IDs(ctx context.Context, table string) (map[int]bool, error) {
	conn, err := pgx.Connect(ctx, n.DSN())
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT id FROM %s", pgx.Identifier{table}.Sanitize()))
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, err
	}
	present := make(map[int]bool, len(ids))
	for _, id := range ids {
		present[id] = true
	}
	return present, nil
}

// CrashPostgres kills the node's postmaster and every backend at once
// (the process group pg_ctl started them in), as a machine crash would:
// killing the postmaster alone leaves open sessions able to commit.
func (n *Node) CrashPostgres() error {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "postmaster.pid"))
	if err != nil {
		return fmt.Errorf("cluster: %s: %w", n.Name, err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		return fmt.Errorf("cluster: %s: postmaster.pid: %w", n.Name, err)
	}
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		return fmt.Errorf("cluster: %s: %w", n.Name, err)
	}
	if pgid <= 1 || pgid == syscall.Getpgrp() {
		return fmt.Errorf("cluster: %s: postmaster %d shares our process group %d", n.Name, pid, pgid)
	}
	return syscall.Kill(-pgid, syscall.SIGKILL)
}

// WaitWritable waits until exactly one running node other than skip
// answers /primary with 200 and returns it.
func (c *Cluster) WaitWritable(ctx context.Context, skip *Node) (*Node, error) {
	for {
		var got *Node
		two := false
		for _, n := range c.Nodes {
			if n == skip || !n.Running() {
				continue
			}
			if StatusCode(ctx, "GET", n.APIURL()+"/primary") == 200 {
				if got != nil {
					two = true
				}
				got = n
			}
		}
		if got != nil && !two {
			return got, nil
		}
		select {
		case <-ctx.Done():
			if two {
				return nil, fmt.Errorf("cluster: two nodes answer /primary")
			}
			return nil, fmt.Errorf("cluster: no node answers /primary")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
