package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/internal/cluster"
)

// needRoot skips a test that needs root (network namespaces), except in CI
// where skipping would hide that the test never runs.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs root (it creates network namespaces) and CI is set: run the e2e tests as root in CI")
	}
	t.Skip("needs root: it creates network namespaces")
}

// launchNetns starts an n-node cluster with every node in its own network
// namespace (cluster.Options.Netns) and removes everything - daemons,
// PostgreSQL, namespaces, veths, bridge - when the test ends, also when it
// fails or panics.
func launchNetns(t *testing.T, n int, extra string) *cluster.Cluster {
	t.Helper()
	c := prepare(t, cluster.Options{Nodes: n, Extra: extra, Netns: true})
	seen := map[int]string{}
	for _, node := range c.Nodes {
		// Writers tell nodes apart by inet_server_port().
		if other, dup := seen[node.PGPort]; dup {
			t.Fatalf("%s and %s share PostgreSQL port %d", other, node.Name, node.PGPort)
		}
		seen[node.PGPort] = node.Name
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// nearWriter inserts a row every 20 ms into one node from inside that
// node's network namespace: a client on the node's side of a partition,
// which Isolate does not cut off from it. It records when each write was
// acknowledged and by which server port.
type nearWriter struct {
	node  *cluster.Node
	table string

	mu   sync.Mutex
	acks []cluster.Ack
	ids  []int // acknowledged ids
}

func (w *nearWriter) run(ctx context.Context) {
	cfg, err := pgx.ParseConfig(w.node.DSN())
	if err != nil {
		panic(err)
	}
	cfg.DialFunc = w.node.DialContext
	insert := fmt.Sprintf("INSERT INTO %s (id) VALUES ($1) RETURNING inet_server_port()", pgx.Identifier{w.table}.Sanitize())
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for id := 1; ; {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			c, err := pgx.ConnectConfig(cctx, cfg)
			cancel()
			if err != nil {
				continue
			}
			conn = c
		}
		ictx, cancel := context.WithTimeout(ctx, time.Second)
		var port int
		err := conn.QueryRow(ictx, insert, id).Scan(&port)
		cancel()
		id++
		if err != nil {
			conn.Close(context.Background())
			conn = nil
			continue
		}
		w.mu.Lock()
		w.acks = append(w.acks, cluster.Ack{At: time.Now(), Port: port})
		w.ids = append(w.ids, id-1)
		w.mu.Unlock()
	}
}

// lost counts the acknowledged ids missing from the table on n.
func (w *nearWriter) lost(ctx context.Context, n *cluster.Node) (lost, acked int, err error) {
	present, err := n.IDs(ctx, w.table)
	if err != nil {
		return 0, 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range w.ids {
		acked++
		if !present[id] {
			lost++
		}
	}
	return lost, acked, nil
}

// acksAfter counts the writes the server on port acknowledged after t and
// returns the last one's time.
func (w *nearWriter) acksAfter(t time.Time, port int) (n int, last time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.acks {
		if a.Port == port && a.At.After(t) {
			n++
			if a.At.After(last) {
				last = a.At
			}
		}
	}
	return n, last
}

// TestPartitionPrimary: cut the primary's node off the network (its
// daemon and PostgreSQL keep running). The majority elects a new primary
// that takes writes under token+1; the cut-off primary acknowledges no
// write after its lease, not even to a client on its own side of the
// partition; once healed, it rejoins as a streaming replica on the new
// timeline.
func TestPartitionPrimary(t *testing.T) { partitionPrimary(t, "off") }

// TestPartitionPrimaryQuorum: the same in synchronous_mode = "quorum",
// where no acknowledged row may be lost: every row either client saw
// committed, on either side of the partition, is on the new primary.
func TestPartitionPrimaryQuorum(t *testing.T) { partitionPrimary(t, "quorum") }

func partitionPrimary(t *testing.T, syncMode string) {
	needRoot(t)
	const leaseTTL = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	c := launchNetns(t, 3, fmt.Sprintf("\n[failover]\nlease_ttl = %q\nsynchronous_mode = %q\n", leaseTTL.String(), syncMode))
	if _, err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	old := waitWritable(t, c, 30*time.Second, nil)
	formedIn := time.Since(began)
	checkSecurityFindings(t, ctx, old, "gossip_encryption", "api_tls")
	before, err := old.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldSelf, _ := before.Node(old.ID)
	if _, err := connect(t, ctx, old).Exec(ctx, "CREATE TABLE e2e_part_far (id int PRIMARY KEY); CREATE TABLE e2e_part_near (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	// Two clients of the old primary: far, in the test process, is cut
	// off with it (its writes then time out); near, inside the old
	// primary's namespace, still reaches it during the partition.
	far := directWriter(c, old, "e2e_part_far")
	near := &nearWriter{node: old, table: "e2e_part_near"}
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go far.Run(wctx)
	go near.run(wctx)
	time.Sleep(time.Second)
	if n := far.AcksAfter(time.Now().Add(-500*time.Millisecond), old.PGPort); n == 0 {
		t.Fatal("the far writer got no acknowledgement from the primary before the partition")
	}
	if n, _ := near.acksAfter(time.Now().Add(-500*time.Millisecond), old.PGPort); n == 0 {
		t.Fatal("the near writer got no acknowledgement from the primary before the partition")
	}

	if err := old.Isolate(); err != nil {
		t.Fatal(err)
	}
	// The partition is in place once Isolate returns, so every lease
	// renewal that can still succeed was sent before isolatedAt.
	isolatedAt := time.Now()
	t.Cleanup(func() { _ = old.Heal() })

	newP := waitWritable(t, c, 30*time.Second, old)
	writableIn := time.Since(isolatedAt)
	if _, err := connect(t, ctx, newP).Exec(ctx, "INSERT INTO e2e_part_far VALUES (-1)"); err != nil {
		t.Fatalf("new primary %s does not take writes: %v", newP.Name, err)
	}
	after, err := newP.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.FencingToken != before.FencingToken+1 {
		t.Fatalf("token went from %d to %d, want +1", before.FencingToken, after.FencingToken)
	}
	newSelf, _ := after.Node(newP.ID)

	// Stay partitioned past the lease with margin, so that a late
	// acknowledgement to the near client would be seen.
	for time.Since(isolatedAt) < leaseTTL+2*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	if err := old.Heal(); err != nil {
		t.Fatal(err)
	}
	healedAt := time.Now()
	var rejoinedIn time.Duration
	eventually(t, 60*time.Second, func() string {
		s, err := newP.Status(ctx)
		if err != nil {
			return err.Error()
		}
		ns, _ := s.Node(old.ID)
		if ns.Role != "replica" || !ns.Streaming || ns.Timeline != newSelf.Timeline || ns.Timeline <= oldSelf.Timeline {
			return fmt.Sprintf("%s: role=%s streaming=%v timeline=%d (new primary's: %d, before: %d)",
				old.Name, ns.Role, ns.Streaming, ns.Timeline, newSelf.Timeline, oldSelf.Timeline)
		}
		rejoinedIn = time.Since(healedAt)
		return ""
	})
	wstop()
	time.Sleep(100 * time.Millisecond)

	// No acknowledgement from the old primary once its lease could have
	// ended, whichever side of the partition the client was on (checked
	// after the heal, so that a commit released late would be counted).
	leaseEnd := isolatedAt.Add(leaseTTL)
	if n := far.AcksAfter(leaseEnd, old.PGPort); n > 0 {
		t.Errorf("old primary %s acknowledged %d writes to the far client after its lease", old.Name, n)
	}
	nearN, nearLast := near.acksAfter(isolatedAt, old.PGPort)
	if n, last := near.acksAfter(leaseEnd, old.PGPort); n > 0 {
		t.Errorf("old primary %s acknowledged %d writes to a client on its side of the partition after its lease (the last %.2f s after the cut)",
			old.Name, n, last.Sub(isolatedAt).Seconds())
	}
	if syncMode != "off" {
		// Zero loss: every acknowledged row survives on the new primary.
		lost, acked, err := far.Lost(ctx, newP)
		if err != nil {
			t.Fatal(err)
		}
		nlost, nacked, err := near.lost(ctx, newP)
		if err != nil {
			t.Fatal(err)
		}
		if lost+nlost > 0 {
			t.Errorf("synchronous_mode=%s: %d of %d acknowledged rows lost (far client %d of %d, near client %d of %d)", syncMode, lost+nlost, acked+nacked, lost, acked, nlost, nacked)
		}
		t.Logf("synchronous_mode=%s: %d acknowledged rows, none lost", syncMode, acked+nacked)
	}
	lastNear := "none"
	if nearN > 0 {
		lastNear = fmt.Sprintf("the last %.2f s after", nearLast.Sub(isolatedAt).Seconds())
	}
	t.Logf("formed in %.1f s; %s cut off: %s writable %.2f s later (token %d→%d, timeline %d→%d); old primary acknowledged %d writes to the near client after the cut (%s), %d to the far client; healed %.1f s after the cut, rejoined as a streaming replica %.2f s after the heal; total %.1f s",
		formedIn.Seconds(), old.Name, newP.Name, writableIn.Seconds(), before.FencingToken, after.FencingToken, oldSelf.Timeline, newSelf.Timeline,
		nearN, lastNear, far.AcksAfter(isolatedAt, old.PGPort), healedAt.Sub(isolatedAt).Seconds(), rejoinedIn.Seconds(), time.Since(began).Seconds())
}
