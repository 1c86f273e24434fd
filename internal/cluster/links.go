package cluster

// Finer network faults than Isolate, for the chaos harness (e2e/chaos):
// cutting the link between two nodes while both still reach everybody
// else (partitions into halves, a majority ring), degrading a node's link
// with netem (latency, loss), and the PostgreSQL postmaster's PID for
// process faults. All need Options.Netns.
//
// A link is cut with a blackhole route to the peer's address in each of
// the two namespaces: packets one node sends to the other are discarded
// at the sender (locally generated packets to a blackhole route fail with
// EINVAL at once instead of timing out), in both directions, while the
// host (clients, HAProxy) still reaches both. No netfilter is needed, so
// iproute2 alone suffices.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// CutLink makes a and b unable to reach each other; each still reaches
// every other node and the host. Cutting a cut link is an error (the
// route exists).
func (c *Cluster) CutLink(a, b *Node) error {
	if a.Netns == "" || b.Netns == "" {
		return fmt.Errorf("cluster: CutLink %s-%s needs Options.Netns", a.Name, b.Name)
	}
	if err := ip("-n", a.Netns, "route", "add", "blackhole", b.Addr+"/32"); err != nil {
		return err
	}
	if err := ip("-n", b.Netns, "route", "add", "blackhole", a.Addr+"/32"); err != nil {
		_ = ip("-n", a.Netns, "route", "del", "blackhole", b.Addr+"/32")
		return err
	}
	return nil
}

// HealLink undoes CutLink; healing a link that is not cut is not an
// error.
func (c *Cluster) HealLink(a, b *Node) error {
	var first error
	for _, p := range [][2]*Node{{a, b}, {b, a}} {
		if p[0].Netns == "" {
			return fmt.Errorf("cluster: HealLink %s-%s needs Options.Netns", a.Name, b.Name)
		}
		if err := ip("-n", p[0].Netns, "route", "del", "blackhole", p[1].Addr+"/32"); err != nil && !noRoute(err) && first == nil {
			first = err
		}
	}
	return first
}

func noRoute(err error) bool {
	return strings.Contains(err.Error(), "No such process") || notFound(err)
}

// Netem degrades the node's link in both directions with a netem qdisc
// on both ends of its veth, e.g. Netem("delay", "100ms", "20ms", "loss",
// "5%"). Needs tc (iproute2).
func (n *Node) Netem(args ...string) error {
	if n.hostVeth == "" {
		return fmt.Errorf("cluster: %s: Netem needs Options.Netns", n.Name)
	}
	if _, err := exec.LookPath("tc"); err != nil {
		return fmt.Errorf("cluster: %s: Netem needs the tc command (iproute2)", n.Name)
	}
	host := append([]string{"qdisc", "replace", "dev", n.hostVeth, "root", "netem"}, args...)
	if err := tc(host...); err != nil {
		if strings.Contains(err.Error(), "qdisc kind is unknown") {
			return fmt.Errorf("cluster: %s: %w", n.Name, ErrNoNetem)
		}
		return err
	}
	inner := append([]string{"-n", n.Netns, "qdisc", "replace", "dev", "eth0", "root", "netem"}, args...)
	if err := tc(inner...); err != nil {
		_ = n.ClearNetem()
		return err
	}
	return nil
}

// ErrNoNetem is returned (wrapped) by Netem when the kernel has no netem
// qdisc (CONFIG_NET_SCH_NETEM unset, as on some VM kernels).
var ErrNoNetem = errors.New("the kernel has no netem qdisc")

// Throttle limits the node's link in both directions to rate (tc's
// syntax, e.g. "256kbit") with a token bucket (tbf) whose queue holds at
// most latency worth of packets: a slow link whose queueing delay grows
// with the load and which drops what overflows. It needs only the tbf
// qdisc, for kernels without netem. ClearNetem undoes it.
func (n *Node) Throttle(rate, latency string) error {
	if n.hostVeth == "" {
		return fmt.Errorf("cluster: %s: Throttle needs Options.Netns", n.Name)
	}
	spec := []string{"root", "tbf", "rate", rate, "burst", "8kb", "latency", latency}
	if err := tc(append([]string{"qdisc", "replace", "dev", n.hostVeth}, spec...)...); err != nil {
		return err
	}
	if err := tc(append([]string{"-n", n.Netns, "qdisc", "replace", "dev", "eth0"}, spec...)...); err != nil {
		_ = n.ClearNetem()
		return err
	}
	return nil
}

// ClearNetem removes what Netem or Throttle added; clearing a clean link is not an
// error.
func (n *Node) ClearNetem() error {
	if n.hostVeth == "" {
		return fmt.Errorf("cluster: %s: ClearNetem needs Options.Netns", n.Name)
	}
	var first error
	for _, args := range [][]string{
		{"qdisc", "del", "dev", n.hostVeth, "root"},
		{"-n", n.Netns, "qdisc", "del", "dev", "eth0", "root"},
	} {
		if err := tc(args...); err != nil && !noQdisc(err) && first == nil {
			first = err
		}
	}
	return first
}

func noQdisc(err error) bool {
	s := err.Error()
	return strings.Contains(s, "No such file") || strings.Contains(s, "Cannot find") || strings.Contains(s, "handle of zero") ||
		strings.Contains(s, "Cannot delete qdisc with handle of zero")
}

func tc(args ...string) error {
	out, err := exec.Command("tc", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cluster: tc %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// PostmasterPID is the PID in the node's postmaster.pid (an error when
// PostgreSQL is not running or the file is unreadable).
func (n *Node) PostmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("cluster: %s: %w", n.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("cluster: %s: postmaster.pid has no PID", n.Name)
	}
	return pid, nil
}
