package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// spareReadToken is the read token of launchWithSpare's clusters.
const spareReadToken = "read-token-0123456789abcdef"

// launchWithSpare starts a 4-node cluster whose first three nodes form
// it (expect_nodes = 3, seeds among themselves) and whose fourth knows no
// seed: it stays alone until an add-node joins it.
func launchWithSpare(t *testing.T) *cluster.Cluster {
	t.Helper()
	c := launchPrepared(t, 4, "")
	joinLine := regexp.MustCompile(`(?m)^join = .*$`)
	var seeds []string
	for _, n := range c.Nodes[:3] {
		seeds = append(seeds, fmt.Sprintf("%q", fmt.Sprintf("%s:%d", n.Addr, n.MeshPort)))
	}
	for i, n := range c.Nodes {
		b, err := os.ReadFile(n.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		cfg := strings.Replace(string(b), "expect_nodes = 4", "expect_nodes = 3", 1)
		cfg = strings.Replace(cfg, "auth_token = ", "read_token = \""+spareReadToken+"\"\nauth_token = ", 1)
		join := "join = [" + strings.Join(seeds, ", ") + "]"
		if i == 3 {
			join = "join = []"
		}
		cfg = joinLine.ReplaceAllString(cfg, join)
		if err := os.WriteFile(n.ConfigPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestAddRemoveNode: a fourth daemon that knows no seed stays on its own
// until ramctl node add (asked of a replica) joins it; it is added as a
// voter and clones the primary. ramctl node remove refuses the primary
// and a running node; once the fourth daemon is stopped it is removed,
// and no node lists it any more.
func TestAddRemoveNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := launchWithSpare(t)
	first3, fourth := c.Nodes[:3], c.Nodes[3]
	p := waitWritable(t, c, 60*time.Second, nil)
	var asked *cluster.Node
	for _, n := range first3 {
		if n != p {
			asked = n
		}
	}
	ramctl := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, ramctlBin, append([]string{"--url", asked.APIURL(), "--token", c.Token}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	listed := func(n *cluster.Node, id int) bool {
		s, err := n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, ok := s.Node(id)
		return ok
	}
	time.Sleep(2 * time.Second)
	if listed(p, fourth.ID) {
		t.Fatal("the fourth node joined without add-node")
	}

	out, err := ramctl("node", "add", fmt.Sprint(fourth.ID), "--address", fourth.Addr, "--port", fmt.Sprint(fourth.MeshPort))
	if err != nil || !strings.Contains(out, "voter") {
		t.Fatalf("node add: %v: %s", err, out)
	}
	t.Logf("ramctl: %s", out)
	eventually(t, 90*time.Second, func() string {
		s, err := p.Status(ctx)
		if err != nil {
			return err.Error()
		}
		ns, ok := s.Node(fourth.ID)
		if !ok || ns.Role != "replica" || !ns.Streaming {
			return fmt.Sprintf("%s: listed=%v role=%s streaming=%v", fourth.Name, ok, ns.Role, ns.Streaming)
		}
		return ""
	})

	if out, err := ramctl("node", "remove", fmt.Sprint(p.ID), "--force"); err == nil || !strings.Contains(out, "switch over first") {
		t.Fatalf("removing the primary: %v: %s", err, out)
	}
	if out, err := ramctl("node", "remove", fmt.Sprint(fourth.ID), "--force"); err == nil || !strings.Contains(out, "stop its daemon") {
		t.Fatalf("removing a running node: %v: %s", err, out)
	}
	if err := fourth.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	out, err = ramctl("node", "remove", fmt.Sprint(fourth.ID), "--force")
	if err != nil {
		t.Fatalf("node remove: %v: %s", err, out)
	}
	t.Logf("ramctl: %s", out)
	eventually(t, 20*time.Second, func() string {
		for _, n := range first3 {
			if listed(n, fourth.ID) {
				return n.Name + " still lists " + fourth.Name
			}
		}
		return ""
	})
}
