package cluster

// Options.Netns: every node in its own network namespace, so that a test
// can cut one off the network (a partition) while its daemon and its
// PostgreSQL keep running.
//
// The network is a bridge in the host's namespace with the address
// 10.213.X.254/24 and one veth pair per node: the host end (rv<sfx>-<i>)
// is a port of the bridge, the other end is eth0 in the namespace
// ramd-<pid>-<sfx>-<i> with the address 10.213.X.i/24 (loopback up). X is
// a /24 no address or route on the host uses yet; <sfx> is random; <pid>
// is the launching process, so that networks left behind by a process
// that died without cleaning up (a killed go test) are removed by the
// next Prepare. Nothing routes these addresses anywhere else: the
// namespaces have no default route and the host only a route to the
// bridge.
//
// The test process, in the host's namespace, reaches every node through
// the bridge's address. Isolate takes the host end of a node's veth down:
// the node then reaches nobody and nobody reaches it - the other nodes and
// the test process alike (connections time out rather than being
// refused) - while what runs inside its namespace still reaches its own
// address (its daemon, its PostgreSQL, and clients dialled with
// Node.DialContext: clients on the node's side of the partition).

import (
	"golang.org/x/sys/unix"

	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// network is a Netns cluster's bridge; the nodes hold their namespace and
// veth names.
type network struct {
	subnet int // X in 10.213.X.0/24
	bridge string
}

func (nw *network) cidr() string      { return fmt.Sprintf("10.213.%d.0/24", nw.subnet) }
func (nw *network) addr(i int) string { return fmt.Sprintf("10.213.%d.%d", nw.subnet, i) }

// hostAddr is the bridge's (the host's) address on the network.
func (nw *network) hostAddr() string { return nw.addr(254) }

// Subnets taken by this process (parallel tests) and not yet released.
var (
	subnetMu   sync.Mutex
	subnetsOut = map[int]bool{}
)

// setupNetwork creates the bridge, and a namespace and veth per node, and
// sets every node's Addr. On error, what was created is removed.
func (c *Cluster) setupNetwork() (err error) {
	if runtime.GOOS != "linux" {
		return errors.New("cluster: Options.Netns needs Linux (network namespaces)")
	}
	if os.Geteuid() != 0 {
		return errors.New("cluster: Options.Netns needs root (it creates network namespaces, veths and a bridge)")
	}
	if len(c.Nodes) > 250 {
		return fmt.Errorf("cluster: Options.Netns supports at most 250 nodes, not %d", len(c.Nodes))
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("cluster: Options.Netns needs the ip command (iproute2)")
	}
	sweepStaleNetworks()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	sfx := hex.EncodeToString(b)
	subnet, err := pickSubnet()
	if err != nil {
		return err
	}
	nw := &network{subnet: subnet, bridge: "rbr" + sfx}
	c.net = nw
	defer func() {
		if err != nil {
			_ = c.teardownNetwork()
		}
	}()
	pid := os.Getpid()
	if err := ip("link", "add", "name", nw.bridge, "type", "bridge"); err != nil {
		return err
	}
	// The alias names the owner for sweepStaleNetworks.
	if err := ip("link", "set", "dev", nw.bridge, "alias", fmt.Sprintf("ramd-netns:%d", pid)); err != nil {
		return err
	}
	if err := ip("addr", "add", nw.hostAddr()+"/24", "dev", nw.bridge); err != nil {
		return err
	}
	if err := ip("link", "set", "dev", nw.bridge, "up"); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		n.Netns = fmt.Sprintf("ramd-%d-%s-%d", pid, sfx, n.ID)
		n.hostVeth = fmt.Sprintf("rv%s-%d", sfx, n.ID)
		peer := fmt.Sprintf("rp%s-%d", sfx, n.ID)
		n.Addr = nw.addr(n.ID)
		steps := [][]string{
			{"netns", "add", n.Netns},
			{"link", "add", "name", n.hostVeth, "type", "veth", "peer", "name", peer, "netns", n.Netns},
			{"-n", n.Netns, "link", "set", "dev", peer, "name", "eth0"},
			{"-n", n.Netns, "addr", "add", n.Addr + "/24", "dev", "eth0"},
			{"-n", n.Netns, "link", "set", "dev", "eth0", "up"},
			{"-n", n.Netns, "link", "set", "dev", "lo", "up"},
			{"link", "set", "dev", n.hostVeth, "master", nw.bridge},
			{"link", "set", "dev", n.hostVeth, "up"},
		}
		for _, s := range steps {
			if err := ip(s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// teardownNetwork removes the veths, namespaces and bridge (whatever of
// them exists) and releases the subnet.
func (c *Cluster) teardownNetwork() error {
	if c.net == nil {
		return nil
	}
	var errs []error
	for _, n := range c.Nodes {
		// Deleting one end of a veth deletes both, even when a process
		// left behind keeps the namespace alive.
		if n.hostVeth != "" {
			if err := ip("link", "del", "dev", n.hostVeth); err != nil && !notFound(err) {
				errs = append(errs, err)
			}
		}
		if n.Netns != "" {
			if err := ip("netns", "del", n.Netns); err != nil && !notFound(err) {
				errs = append(errs, err)
			}
		}
	}
	if err := ip("link", "del", "dev", c.net.bridge); err != nil && !notFound(err) {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		subnetMu.Lock()
		delete(subnetsOut, c.net.subnet)
		subnetMu.Unlock()
		c.net = nil
	}
	return errors.Join(errs...)
}

// Isolate cuts the node off the network by taking the host end of its
// veth down: from then on nothing reaches the node and the node reaches
// nothing - not the other nodes, and not the test process either (its
// API and PostgreSQL connections time out, they are not refused). Inside
// its namespace everything still works: its daemon talks to its own
// PostgreSQL, and clients dialled with DialContext still reach it.
// Needs Options.Netns.
func (n *Node) Isolate() error {
	if n.hostVeth == "" {
		return fmt.Errorf("cluster: %s: Isolate needs Options.Netns", n.Name)
	}
	return ip("link", "set", "dev", n.hostVeth, "down")
}

// Heal undoes Isolate.
func (n *Node) Heal() error {
	if n.hostVeth == "" {
		return fmt.Errorf("cluster: %s: Heal needs Options.Netns", n.Name)
	}
	return ip("link", "set", "dev", n.hostVeth, "up")
}

// DialContext dials addr from inside the node's network namespace, as a
// client on the node's side of a partition would (for pgx:
// ConnConfig.DialFunc). Without Options.Netns it is a plain dial.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if n.Netns == "" {
		return d.DialContext(ctx, network, addr)
	}
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		// The socket is created on this thread, moved into the node's
		// namespace. The thread is never unlocked: Go ends a thread
		// whose goroutine exits while locked to it, so no other
		// goroutine ever runs in the wrong namespace.
		runtime.LockOSThread()
		conn, err := func() (net.Conn, error) {
			if err := setns(filepath.Join("/run/netns", n.Netns)); err != nil {
				return nil, fmt.Errorf("cluster: %s: enter namespace %s: %w", n.Name, n.Netns, err)
			}
			return d.DialContext(ctx, network, addr)
		}()
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// setns moves the calling thread into the network namespace at path.
func setns(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// ip runs ip(8).
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cluster: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func notFound(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Cannot find device") || strings.Contains(s, "No such file") || strings.Contains(s, "does not exist")
}

var subnetRE = regexp.MustCompile(`\b10\.213\.(\d+)\.`)

// pickSubnet returns an X such that nothing on the host uses 10.213.X.*.
func pickSubnet() (int, error) {
	used := map[int]bool{}
	for _, args := range [][]string{{"-o", "-4", "addr", "show"}, {"-4", "route", "show", "table", "all"}} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			return 0, fmt.Errorf("cluster: ip %s: %w", strings.Join(args, " "), err)
		}
		for _, m := range subnetRE.FindAllStringSubmatch(string(out), -1) {
			x, _ := strconv.Atoi(m[1])
			used[x] = true
		}
	}
	subnetMu.Lock()
	defer subnetMu.Unlock()
	for tries := 0; tries < 1000; tries++ {
		x := 1 + int(randUint32()%253)
		if !used[x] && !subnetsOut[x] {
			subnetsOut[x] = true
			return x, nil
		}
	}
	return 0, errors.New("cluster: no free subnet in 10.213.0.0/16")
}

func randUint32() uint32 {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

var (
	staleNetnsRE  = regexp.MustCompile(`^ramd-(\d+)-([0-9a-f]{6})-\d+$`)
	staleBridgeRE = regexp.MustCompile(`^\d+: (rbr[0-9a-f]{6}):.* alias ramd-netns:(\d+)`)
)

// sweepStaleNetworks removes the namespaces, veths and bridges of Netns
// clusters whose launching process no longer exists (killed before it
// could clean up). Processes left running in such namespaces are not
// touched. Best effort.
func sweepStaleNetworks() {
	stale := map[string]bool{} // suffixes
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			m := staleNetnsRE.FindStringSubmatch(f[0])
			if m == nil || processExists(m[1]) {
				continue
			}
			stale[m[2]] = true
			_ = ip("netns", "del", f[0])
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "type", "bridge").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if m := staleBridgeRE.FindStringSubmatch(line); m != nil && !processExists(m[2]) {
				stale[strings.TrimPrefix(m[1], "rbr")] = true
			}
		}
	}
	if len(stale) == 0 {
		return
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if len(name) > 8 && strings.HasPrefix(name, "rv") && stale[name[2:8]] {
				_ = ip("link", "del", "dev", name)
			}
		}
	}
	for sfx := range stale {
		_ = ip("link", "del", "dev", "rbr"+sfx)
	}
}

func processExists(pid string) bool {
	p, err := strconv.Atoi(pid)
	if err != nil || p <= 0 {
		return true
	}
	err = syscall.Kill(p, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
