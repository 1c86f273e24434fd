package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// TestMaintenanceAndManualFailover: with maintenance on, a killed
// primary is not replaced automatically; a manual failover (ramctl, asked
// of a replica) promotes the named replica under token+1 and writes
// resume; maintenance off restores automatic failover.
func TestMaintenanceAndManualFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, old := formedPrimary(t, ctx)
	var cand, other *cluster.Node
	for _, n := range c.Nodes {
		if n != old {
			if cand == nil {
				cand = n
			} else {
				other = n
			}
		}
	}
	ramctl := func(url string, args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, ramctlBin, append([]string{"--url", url, "--token", c.Token}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := ramctl(other.APIURL(), "maintenance", "on"); err != nil {
		t.Fatalf("maintenance on: %v: %s", err, out)
	}
	var before cluster.Status
	eventually(t, 5*time.Second, func() string {
		s, err := old.Status(ctx)
		if err != nil || !s.Maintenance {
			return fmt.Sprintf("%s's status does not show maintenance mode (%v)", old.Name, err)
		}
		before = s
		return ""
	})
	// A manual failover is refused while the primary is healthy.
	if out, err := ramctl(other.APIURL(), "failover", "--candidate", fmt.Sprint(cand.ID), "--force"); err == nil || !strings.Contains(out, "use a switchover") {
		t.Fatalf("manual failover with a healthy primary: %v: %s", err, out)
	}

	if err := old.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashPostgres(t, old)
	// Well past detection and the lease: nothing may happen by itself.
	time.Sleep(6 * time.Second)
	s, err := cand.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.FencingToken != before.FencingToken {
		t.Fatalf("maintenance mode on, yet the token went %d → %d", before.FencingToken, s.FencingToken)
	}
	for _, n := range []*cluster.Node{cand, other} {
		if code := httpStatus("GET", n.APIURL()+"/primary"); code == 200 {
			t.Fatalf("%s became writable by itself in maintenance mode", n.Name)
		}
	}

	began := time.Now()
	out, err := ramctl(other.APIURL(), "failover", "--candidate", fmt.Sprint(cand.ID), "--force")
	if err != nil {
		t.Fatalf("manual failover: %v: %s", err, out)
	}
	t.Logf("ramctl: %s", out)
	after, err := cand.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.PrimaryNodeID != cand.ID || after.FencingToken != before.FencingToken+1 {
		t.Fatalf("after the manual failover: primary %d token %d, want %d and %d", after.PrimaryNodeID, after.FencingToken, cand.ID, before.FencingToken+1)
	}
	if _, err := connect(t, ctx, cand).Exec(ctx, "CREATE TABLE e2e_manual (id int)"); err != nil {
		t.Fatalf("new primary %s does not take writes: %v", cand.Name, err)
	}
	if out, err := ramctl(other.APIURL(), "maintenance", "off"); err != nil {
		t.Fatalf("maintenance off: %v: %s", err, out)
	}
	// ramctl returns once the node it asked applied the change; the
	// others apply it from the raft log a moment later.
	eventually(t, 5*time.Second, func() string {
		if s, err := cand.Status(ctx); err != nil || s.Maintenance {
			return fmt.Sprintf("%s still shows maintenance on (%v)", cand.Name, err)
		}
		return ""
	})
	t.Logf("manual failover to %s took %.2f s (the old lease is waited out first)", cand.Name, time.Since(began).Seconds())

	// With maintenance off, failover is automatic again: bring the old
	// node back (it rejoins as a replica), then kill the new primary.
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	waitReplicasStreaming(t, c, cand)
	if err := cand.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashPostgres(t, cand)
	next := waitWritable(t, c, 30*time.Second, cand)
	s, err = next.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.FencingToken != after.FencingToken+1 {
		t.Fatalf("automatic failover after maintenance off: token %d, want %d", s.FencingToken, after.FencingToken+1)
	}
	t.Logf("maintenance off: %s killed, %s promoted automatically", cand.Name, next.Name)
}
