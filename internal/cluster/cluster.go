package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// Options describes the cluster to launch.
type Options struct {
	// Nodes is the number of nodes (default 3).
	Nodes int
	// Dir holds every node's files. It is created if missing.
	Dir string
	// Binary is the ramd executable to run.
	Binary string
	// Ports: when BasePorts is false every port is a free one picked at
	// launch; when true node i (1-based) uses PGBase+i-1, APIBase+i-1,
	// MetricsBase+i-1 and MeshBase+i-1.
	BasePorts                              bool
	PGBase, APIBase, MetricsBase, MeshBase int
	// Password is the PostgreSQL superuser password (random when empty).
	Password string
	// Token is the API admin token (random when empty).
	Token string
	// LogLevel for the daemons (default "info").
	LogLevel string
	// Extra is appended to every node's config file (TOML), e.g. extra
	// [postgresql.parameters].
	Extra string
	// Output receives each daemon's stdout and stderr (in addition to its
	// log file) when set.
	Output io.Writer
	// Netns puts every node in its own network namespace (Linux, root,
	// iproute2), on a bridge, with its own address 10.213.X.i (see
	// netns.go), so that Node.Isolate can partition it. Every port is
	// still distinct across nodes, so a port identifies a node. Default
	// false: every node on 127.0.0.1.
	Netns bool
	// HTTP, when set, is the client Node.Client and Cluster.WaitFormed
	// use, and APIURL says https: for clusters whose API serves TLS (the
	// [api] TLS settings are for the caller to write into the config
	// files). Default: plain HTTP with the default client.
	HTTP *http.Client
	// Election is [cluster] election ("" leaves the default, quorum);
	// CoordinationDSN its coordination_dsn (for "pglock").
	Election, CoordinationDSN string
}

// Node is one launched node.
type Node struct {
	ID          int
	Name        string
	ConfigPath  string
	DataDir     string
	StateDir    string
	LogPath     string
	PGPort      int
	APIPort     int
	MetricsPort int
	MeshPort    int
	// Addr is the address the node's mesh, API, metrics and PostgreSQL
	// listen on: 127.0.0.1, or with Options.Netns the node's own address.
	Addr string
	// Netns is the node's network namespace ("" without Options.Netns).
	Netns    string
	hostVeth string
	cmd      *exec.Cmd
	done     chan struct{}
	c        *Cluster
}

// Cluster is a set of launched nodes.
type Cluster struct {
	Dir      string
	Password string
	// Token is every node's API admin token.
	Token string
	Nodes []*Node
	opts  Options
	net   *network // with Options.Netns
}

// Prepare writes every node's config file without starting anything.
func Prepare(opts Options) (*Cluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	if opts.Password == "" {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("cluster: password: %w", err)
		}
		opts.Password = hex.EncodeToString(b)
	}
	if opts.Token == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("cluster: token: %w", err)
		}
		opts.Token = hex.EncodeToString(b)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	// PostgreSQL runs as another user when we are root: it must be able
	// to reach its data directory below ours.
	if err := os.Chmod(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c := &Cluster{Dir: opts.Dir, Password: opts.Password, Token: opts.Token, opts: opts}
	var drawn []int
	if !opts.BasePorts {
		// One draw for the whole cluster, so that the ports are distinct
		// across nodes. Drawing per node let two nodes get the same port
		// (nothing listens yet when they are drawn): one daemon's mesh
		// port was another's PostgreSQL port, and whichever bound it
		// second failed, sometimes only after a restart. In separate
		// namespaces a clash would not even fail a bind, but writers tell
		// nodes apart by port.
		ports, err := FreePorts(4 * opts.Nodes)
		if err != nil {
			return nil, err
		}
		drawn = ports
	}
	for i := 1; i <= opts.Nodes; i++ {
		n := &Node{ID: i, Name: fmt.Sprintf("node%d", i), Addr: "127.0.0.1", c: c}
		if opts.BasePorts {
			n.PGPort, n.APIPort, n.MetricsPort, n.MeshPort = opts.PGBase+i-1, opts.APIBase+i-1, opts.MetricsBase+i-1, opts.MeshBase+i-1
		} else {
			p := drawn[4*(i-1):]
			n.PGPort, n.APIPort, n.MetricsPort, n.MeshPort = p[0], p[1], p[2], p[3]
		}
		dir := filepath.Join(opts.Dir, n.Name)
		n.DataDir = filepath.Join(dir, "data")
		n.StateDir = filepath.Join(dir, "state")
		n.LogPath = filepath.Join(dir, "ramd.log")
		n.ConfigPath = filepath.Join(dir, "ramd.toml")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	if opts.Netns {
		if err := c.setupNetwork(); err != nil {
			return nil, err
		}
	}
	for _, n := range c.Nodes {
		if err := c.writeConfig(n); err != nil {
			_ = c.teardownNetwork()
			return nil, err
		}
	}
	return c, nil
}

var configTemplate = template.Must(template.New("ramd.toml").Parse(`# Generated by ramd's local cluster launcher.
[cluster]
node_id = {{.N.ID}}
node_name = "{{.N.Name}}"
cluster_name = "{{.ClusterName}}"
join = [{{.Join}}]
expect_nodes = {{.Expect}}
data_directory = "{{.N.DataDir}}"
state_directory = "{{.N.StateDir}}"
log_level = "{{.LogLevel}}"
{{- if .Election}}
election = "{{.Election}}"
coordination_dsn = {{printf "%q" .CoordinationDSN}}
{{- end}}

[mesh]
bind_addr = "{{.N.Addr}}"
{{- if .Netns}}
advertise_addr = "{{.N.Addr}}"
{{- end}}
bind_port = {{.N.MeshPort}}

[api]
host = "{{.N.Addr}}"
port = {{.N.APIPort}}
auth_token = "{{.Token}}"

[postgresql]
host = "{{.N.Addr}}"
port = {{.N.PGPort}}
password = "{{.Password}}"
hba_networks = ["{{.HBA}}"]

[monitoring]
prometheus_enabled = true
prometheus_port = {{.N.MetricsPort}}
{{.Extra}}
`))

func (c *Cluster) writeConfig(n *Node) error {
	var join []string
	for _, m := range c.Nodes {
		join = append(join, strconv.Quote(net.JoinHostPort(m.Addr, strconv.Itoa(m.MeshPort))))
	}
	hba := "127.0.0.1/32"
	if c.net != nil {
		hba = c.net.cidr()
	}
	f, err := os.Create(n.ConfigPath)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer f.Close()
	err = configTemplate.Execute(f, map[string]any{
		"N": n, "ClusterName": "demo", "Join": strings.Join(join, ", "), "Expect": len(c.Nodes),
		"LogLevel": c.opts.LogLevel, "Password": c.Password, "Token": c.Token, "Extra": c.opts.Extra,
		"Netns": c.net != nil, "HBA": hba, "Election": c.opts.Election, "CoordinationDSN": c.opts.CoordinationDSN,
	})
	if err != nil {
		return fmt.Errorf("cluster: write %s: %w", n.ConfigPath, err)
	}
	return f.Close()
}

// HostAddr is the host's address as the nodes reach it: the bridge's
// with Netns, else 127.0.0.1 (for servers a test runs beside the cluster,
// such as a coordination database).
func (c *Cluster) HostAddr() string {
	if c.net != nil {
		return c.net.hostAddr()
	}
	return "127.0.0.1"
}

// SetCoordination makes every node use the pglock election backend with
// the coordination database dsn, rewriting their configuration files
// (call it before Start).
func (c *Cluster) SetCoordination(dsn string) error {
	c.opts.Election, c.opts.CoordinationDSN = "pglock", dsn
	for _, n := range c.Nodes {
		if err := c.writeConfig(n); err != nil {
			return err
		}
	}
	return nil
}

// Start launches every node's daemon.
func (c *Cluster) Start() error {
	for _, n := range c.Nodes {
		if err := n.Start(); err != nil {
			return err
		}
	}
	return nil
}

// Start launches this node's daemon in the foreground of a child process.
func (n *Node) Start() error {
	if n.cmd != nil {
		select {
		case <-n.done:
		default:
			return fmt.Errorf("cluster: %s is already running", n.Name)
		}
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cmd := exec.Command(n.c.opts.Binary, "start", "--foreground", "--config", n.ConfigPath)
	if n.Netns != "" {
		// ip netns exec enters the namespace and execs the daemon (no
		// fork: the child's PID is the daemon's); its PostgreSQL
		// inherits the namespace.
		cmd = exec.Command("ip", "netns", "exec", n.Netns, n.c.opts.Binary, "start", "--foreground", "--config", n.ConfigPath)
	}
	var out io.Writer = logf
	if n.c.opts.Output != nil {
		out = io.MultiWriter(logf, n.c.opts.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: a Ctrl-C meant for the demo is forwarded as a
	// clean SIGTERM rather than reaching every daemon at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("cluster: start %s: %w", n.Name, err)
	}
	n.cmd = cmd
	n.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(n.done)
	}()
	return nil
}

// PID is the daemon's process id (0 when not started).
func (n *Node) PID() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether the daemon process is alive.
func (n *Node) Running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the daemon.
func (n *Node) Signal(sig syscall.Signal) error {
	if !n.Running() {
		return fmt.Errorf("cluster: %s is not running", n.Name)
	}
	return n.cmd.Process.Signal(sig)
}

// Stop sends SIGTERM and waits up to timeout for the daemon to exit,
// killing it after that.
func (n *Node) Stop(timeout time.Duration) error {
	if !n.Running() {
		return nil
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return nil
	case <-time.After(timeout):
		_ = n.cmd.Process.Kill()
		<-n.done
		return fmt.Errorf("cluster: %s did not stop within %s and was killed", n.Name, timeout)
	}
}

// Wait blocks until the daemon exits or ctx ends.
func (n *Node) Wait(ctx context.Context) error {
	if n.cmd == nil {
		return nil
	}
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// APIURL is the node's REST base URL.
func (n *Node) APIURL() string {
	if n.c.opts.HTTP != nil {
		return "https://" + net.JoinHostPort(n.Addr, strconv.Itoa(n.APIPort))
	}
	return "http://" + net.JoinHostPort(n.Addr, strconv.Itoa(n.APIPort))
}

// DSN is a libpq connection string for the node's PostgreSQL.
func (n *Node) DSN() string {
	return fmt.Sprintf("host=%s port=%d user=postgres password=%s dbname=postgres sslmode=disable connect_timeout=3", n.Addr, n.PGPort, n.c.Password)
}

// Close stops every daemon (SIGTERM: PostgreSQL fast shutdown), then makes
// sure no PostgreSQL it started is left running, and with Options.Netns
// removes the network (namespaces, veths, bridge).
func (c *Cluster) Close() error {
	var errs []error
	for _, n := range c.Nodes {
		if err := n.Stop(60 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range c.Nodes {
		if err := n.StopPostgres(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.teardownNetwork(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// StopPostgres stops a PostgreSQL left behind by a killed daemon
// (immediate mode). It is a no-op when none runs.
func (n *Node) StopPostgres() error {
	if _, err := os.Stat(filepath.Join(n.DataDir, "postmaster.pid")); err != nil {
		return nil
	}
	bin, err := pgBinDir()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "pg_ctl"), "stop", "-D", n.DataDir, "-m", "immediate", "-w")
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("postgres"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such process") && !strings.Contains(string(out), "is the server running") {
		return fmt.Errorf("cluster: pg_ctl stop %s: %v: %s", n.DataDir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func pgBinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		return "", errors.New("cluster: pg_ctl not found: install the postgresql-15 package")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// FreePorts returns n distinct free ports on 127.0.0.1 (free for TCP and
// UDP: gossip uses both). They are drawn at random from below the
// kernel's ephemeral range: a port the kernel handed out for a listen on
// :0 is one it may also hand to any outgoing connection (the daemons open
// many) before the daemon that was given it binds it, which made tests
// fail with "already in use" now and then. Listeners are held until all
// are chosen so the same port is not returned twice.
func FreePorts(n int) ([]int, error) {
	lo, hi := 20000, ephemeralStart()
	if hi-lo < 1000 {
		lo, hi = 10000, 20000
	}
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10000 {
			return nil, fmt.Errorf("cluster: no free port found in %d-%d", lo, hi)
		}
		p := lo + mrand.IntN(hi-lo)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			l.Close()
			continue
		}
		held = append(held, l, u)
		ports = append(ports, p)
	}
	return ports, nil
}

// ephemeralStart is the first port of the kernel's ephemeral range.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	p, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return p
}
