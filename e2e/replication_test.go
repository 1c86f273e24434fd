package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// TestReplicationStopStart: ramctl replication stop detaches a replica
// (asked of the other replica's API): it stops streaming, the cluster
// records it as detached and, in quorum mode, leaves it out of the
// synchronous set, so writes go on; rows written meanwhile do not reach
// it. ramctl replication start re-attaches it and it catches up.
func TestReplicationStopStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, p := formedPrimaryWith(t, ctx, "\n[failover]\nsynchronous_mode = \"quorum\"\n")
	waitReplicasStreaming(t, c, p)
	var det, other *cluster.Node
	for _, n := range c.Nodes {
		if n != p {
			if det == nil {
				det = n
			} else {
				other = n
			}
		}
	}
	ramctl := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, ramctlBin, append([]string{"--url", other.APIURL(), "--token", c.Token}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ramctl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	pc := connect(t, ctx, p)
	if _, err := pc.Exec(ctx, "CREATE TABLE e2e_detach (id int)"); err != nil {
		t.Fatal(err)
	}
	t.Logf("ramctl: %s", ramctl("replication", "stop", fmt.Sprint(det.ID)))
	eventually(t, 20*time.Second, func() string {
		s, err := p.Status(ctx)
		if err != nil {
			return err.Error()
		}
		if ns, _ := s.Node(det.ID); ns.Streaming {
			return det.Name + " still streams"
		}
		if !slices.Equal(s.SyncStandbys, []int{other.ID}) {
			return fmt.Sprintf("synchronous standbys %v, want [%d]", s.SyncStandbys, other.ID)
		}
		return ""
	})
	if st := ramctl("replication", "status"); !strings.Contains(st, "true") {
		t.Fatalf("replication status does not show the detached node:\n%s", st)
	}
	for i := range 20 {
		ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := pc.Exec(ictx, "INSERT INTO e2e_detach VALUES ($1)", i)
		icancel()
		if err != nil {
			t.Fatalf("write %d with %s detached: %v", i, det.Name, err)
		}
	}
	var n int
	if err := connect(t, ctx, det).QueryRow(ctx, "SELECT count(*) FROM e2e_detach").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("detached %s received %d rows", det.Name, n)
	}
	t.Logf("ramctl: %s", ramctl("replication", "start", fmt.Sprint(det.ID)))
	eventually(t, 30*time.Second, func() string {
		var n int
		if err := connect(t, ctx, det).QueryRow(ctx, "SELECT count(*) FROM e2e_detach").Scan(&n); err != nil {
			return err.Error()
		}
		if n != 20 {
			return fmt.Sprintf("%s has %d of 20 rows", det.Name, n)
		}
		return ""
	})
}
