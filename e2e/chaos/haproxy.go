package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ramd/ramd/internal/cluster"
)

// haproxy runs the shipped deploy/haproxy/haproxy.cfg in the host's
// namespace, its bind lines moved to 127.0.0.1:port and its server lines
// rewritten for the cluster's nodes (reached over the bridge), so that an
// isolated node drops out of HAProxy's view as it would on a real network.
type haproxy struct {
	cmd *exec.Cmd
	log strings.Builder
}

var (
	hpBind    = regexp.MustCompile(`(?m)^(\s*bind\s+)\S+$`)
	hpServers = regexp.MustCompile(`(?m)(^\s*server\s+.*\n)+`)
)

func startHAProxy(bin, shipped, dir string, c *cluster.Cluster, primaryPort, replicaPort int) (*haproxy, error) {
	b, err := os.ReadFile(shipped)
	if err != nil {
		return nil, fmt.Errorf("chaos: haproxy: %w", err)
	}
	binds := []int{primaryPort, replicaPort}
	i := 0
	cfg := hpBind.ReplaceAllStringFunc(string(b), func(s string) string {
		m := hpBind.FindStringSubmatch(s)
		if i >= len(binds) {
			return s
		}
		i++
		return fmt.Sprintf("%s127.0.0.1:%d", m[1], binds[i-1])
	})
	if i != 2 {
		return nil, fmt.Errorf("chaos: haproxy: %s has %d bind lines, want 2", shipped, i)
	}
	var servers strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&servers, "    server %s %s:%d maxconn 100 check addr %s port %d\n", n.Name, n.Addr, n.PGPort, n.Addr, n.APIPort)
	}
	blocks := 0
	cfg = hpServers.ReplaceAllStringFunc(cfg, func(string) string { blocks++; return servers.String() })
	if blocks != 2 {
		return nil, fmt.Errorf("chaos: haproxy: %s has %d blocks of server lines, want 2", shipped, blocks)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("chaos: haproxy: %w", err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("chaos: haproxy rejects %s: %v: %s", path, err, out)
	}
	h := &haproxy{cmd: exec.Command(bin, "-db", "-f", path)}
	h.cmd.Stdout, h.cmd.Stderr = &h.log, &h.log
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("chaos: haproxy: %w", err)
	}
	return h, nil
}

func (h *haproxy) stop() {
	if h == nil {
		return
	}
	_ = h.cmd.Process.Kill()
	_ = h.cmd.Wait()
}
