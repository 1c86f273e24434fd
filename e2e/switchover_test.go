package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// TestSwitchover: a planned switchover, with a writer running through a
// multi-host connection string: first to a named candidate, asked through
// ramctl on a replica's API; then to the best replica, asked through the
// API of the primary itself. Each time the candidate (or some replica)
// becomes primary under token+1, no acknowledged row is lost, the old
// primary streams from the new one, and writes pause only briefly.
func TestSwitchover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, old := formedPrimary(t, ctx)
	if _, err := connect(t, ctx, old).Exec(ctx, "CREATE TABLE e2e_switch (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	w := c.NewWriter("e2e_switch", 20*time.Millisecond)
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	waitReplicasStreaming(t, c, old)
	waitAcks(t, w, old)

	// 1. To a named candidate, through ramctl on the other replica.
	var cand, asked *cluster.Node
	for _, n := range c.Nodes {
		if n != old {
			if cand == nil {
				cand = n
			} else {
				asked = n
			}
		}
	}
	out, err := exec.CommandContext(ctx, ramctlBin, "--url", asked.APIURL(), "--token", c.Token, "switchover", "--candidate", fmt.Sprint(cand.ID), "--force").CombinedOutput()
	if err != nil {
		t.Fatalf("ramctl switchover: %v\n%s", err, out)
	}
	t.Logf("ramctl: %s", strings.TrimSpace(string(out)))
	checkSwitched(t, ctx, c, w, old, cand)

	// 2. To the best replica, through the primary's own API.
	waitReplicasStreaming(t, c, cand)
	waitAcks(t, w, cand)
	code, env := apiCall(t, c.Token, "POST", cand.APIURL()+"/api/v1/cluster/switchover", "")
	if code != 200 {
		t.Fatalf("POST /cluster/switchover on the primary: %d %s", code, env)
	}
	s, err := cand.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var next *cluster.Node
	for _, n := range c.Nodes {
		if n.ID == s.PrimaryNodeID {
			next = n
		}
	}
	if next == nil || next == cand {
		t.Fatalf("after the second switchover the primary is node %d", s.PrimaryNodeID)
	}
	checkSwitched(t, ctx, c, w, cand, next)

	// Without the admin token nothing changes.
	if code, env := apiCall(t, "", "POST", old.APIURL()+"/api/v1/cluster/switchover", ""); code != 401 {
		t.Errorf("switchover without a token: %d %s, want 401", code, env)
	}
	// Refusals name the reason: the primary as candidate, an unknown node.
	for body, want := range map[string]int{
		fmt.Sprintf(`{"candidate": %d}`, next.ID): 412,
		`{"candidate": 99}`:                       404,
		`{"candidate": "x"}`:                      400,
		`{"bogus": 1}`:                            400,
	} {
		if code, env := apiCall(t, c.Token, "POST", old.APIURL()+"/api/v1/cluster/switchover", body); code != want {
			t.Errorf("switchover %s: %d %s, want %d", body, code, env, want)
		}
	}
	wstop()
	hist, err := exec.CommandContext(ctx, ramctlBin, "--url", old.APIURL(), "--token", c.Token, "history").CombinedOutput()
	if err != nil || strings.Count(string(hist), "switchover") != 2 {
		t.Fatalf("ramctl history (want two switchovers): %v\n%s", err, hist)
	}
}

// checkSwitched checks one switchover from old to new: token, zero loss,
// the write pause, and the old primary streaming from the new one.
func checkSwitched(t *testing.T, ctx context.Context, c *cluster.Cluster, w *cluster.Writer, old, new *cluster.Node) {
	t.Helper()
	s, err := new.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.PrimaryNodeID != new.ID {
		t.Fatalf("primary is node %d, want %s", s.PrimaryNodeID, new.Name)
	}
	last, ok := w.LastAckBefore(time.Now(), old.PGPort)
	if !ok {
		t.Fatalf("no write was acknowledged by %s before the switchover", old.Name)
	}
	var first time.Time
	eventually(t, 10*time.Second, func() string {
		at, ok := w.FirstAckAfter(last, new.PGPort)
		if !ok {
			return "no write acknowledged by " + new.Name
		}
		first = at
		return ""
	})
	time.Sleep(500 * time.Millisecond)
	lost, acked, err := w.Lost(ctx, new)
	if err != nil {
		t.Fatal(err)
	}
	if lost > 0 {
		t.Errorf("switchover %s → %s lost %d of %d acknowledged rows", old.Name, new.Name, lost, acked)
	}
	eventually(t, 60*time.Second, func() string {
		st, err := new.Status(ctx)
		if err != nil {
			return err.Error()
		}
		n, _ := st.Node(old.ID)
		if n.Role != "replica" || !n.Streaming {
			return fmt.Sprintf("%s: role=%s streaming=%v", old.Name, n.Role, n.Streaming)
		}
		return ""
	})
	t.Logf("switchover %s → %s (token %d): writes paused %.0f ms (last ack on the old primary to first on the new); %d acknowledged rows, none lost",
		old.Name, new.Name, s.FencingToken, first.Sub(last).Seconds()*1000, acked)
}

// waitAcks waits until the writer has had writes acknowledged by p.
func waitAcks(t *testing.T, w *cluster.Writer, p *cluster.Node) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		if w.AcksAfter(time.Now().Add(-500*time.Millisecond), p.PGPort) < 5 {
			return "the writer has no recent acknowledgements from " + p.Name
		}
		return ""
	})
}

// waitReplicasStreaming waits until every node but p streams from p.
func waitReplicasStreaming(t *testing.T, c *cluster.Cluster, p *cluster.Node) {
	t.Helper()
	eventually(t, 60*time.Second, func() string {
		st, err := p.Status(context.Background())
		if err != nil {
			return err.Error()
		}
		for _, n := range c.Nodes {
			if n == p {
				continue
			}
			ns, _ := st.Node(n.ID)
			if ns.Role != "replica" || !ns.Streaming || !ns.Healthy {
				return fmt.Sprintf("%s: role=%s streaming=%v healthy=%v", n.Name, ns.Role, ns.Streaming, ns.Healthy)
			}
		}
		return ""
	})
}

// TestScheduledSwitchover: a switchover scheduled a few seconds ahead
// (ramctl --at) is pending in the status until its time, then carried
// out; one scheduled an hour ahead is withdrawn with ramctl switchover
// cancel and nothing changes.
func TestScheduledSwitchover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, old := formedPrimary(t, ctx)
	waitReplicasStreaming(t, c, old)
	ramctl := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, ramctlBin, append([]string{"--url", old.APIURL(), "--token", c.Token}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ramctl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	at := time.Now().Add(4 * time.Second).Truncate(time.Second).Add(time.Second)
	t.Logf("ramctl: %s", ramctl("switchover", "--at", at.UTC().Format(time.RFC3339), "--force"))
	s, err := old.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Switchover == nil || s.Switchover.ScheduledAt == "" {
		t.Fatalf("status shows no scheduled switchover: %+v", s.Switchover)
	}
	var moved time.Time
	eventually(t, 30*time.Second, func() string {
		s, err := old.Status(ctx)
		if err != nil {
			return err.Error()
		}
		if s.PrimaryNodeID == old.ID || s.PrimaryNodeID == 0 {
			return "still the old primary"
		}
		moved = time.Now()
		return ""
	})
	if moved.Before(at) {
		t.Fatalf("switched over at %s, before its time %s", moved.Format(time.RFC3339Nano), at.Format(time.RFC3339))
	}
	t.Logf("scheduled for %s, new primary serving %.2f s later", at.Format(time.TimeOnly), moved.Sub(at).Seconds())

	s, _ = old.Status(ctx)
	primary := s.PrimaryNodeID
	for _, n := range c.Nodes {
		if n.ID == primary {
			waitReplicasStreaming(t, c, n)
		}
	}
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	ramctl("switchover", "--at", later, "--force")
	if s, _ := old.Status(ctx); s.Switchover == nil {
		t.Fatal("the second scheduled switchover is not pending")
	}
	t.Logf("ramctl: %s", ramctl("switchover", "cancel"))
	s, err = old.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Switchover != nil || s.PrimaryNodeID != primary {
		t.Fatalf("after cancel: pending %+v, primary %d (was %d)", s.Switchover, s.PrimaryNodeID, primary)
	}
}
