package pgtest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ramd/ramd/pg"
)

// Coordination is a standalone PostgreSQL server used as the pglock
// election backend's coordination database.
type Coordination struct {
	// Manager drives the server (stop, start, restart).
	Manager *pg.Manager
	// DSN connects over TCP as the superuser (with its password).
	DSN string
}

// CoordinationServer initdbs and starts a coordination server in a fresh
// TempDir; it is stopped at cleanup.
func CoordinationServer(t testing.TB) *Coordination {
	t.Helper()
	return CoordinationServerOn(t, "127.0.0.1")
}

// CoordinationServerOn is CoordinationServer listening on host (and
// accepting clients from its /24), e.g. a network namespace bridge's
// address so that nodes in namespaces reach it.
func CoordinationServerOn(t testing.TB, host string) *Coordination {
	t.Helper()
	BinDir(t)
	dir := TempDir(t)
	c, err := StartCoordination(dir, host, Logger(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.Manager.Close()
		if err := c.Manager.Stop(ctx, pg.StopImmediate); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// StartCoordination initdbs and starts a coordination server under dir
// (which PostgreSQL's user must be able to write: when running as root it
// is handed to "postgres") on a free port of host (an IPv4 address; its
// /24 may connect). The caller stops it (Manager.Stop). For programs that
// are not tests (benchmarks).
func StartCoordination(dir, host string, log *slog.Logger) (*Coordination, error) {
	bin, err := pg.FindBinDir("")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		uid, gid, err := lookupIDs(runAsUser)
		if err != nil {
			return nil, err
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	ip := net.ParseIP(host).To4()
	if ip == nil {
		return nil, fmt.Errorf("coordination server: %q is not an IPv4 address", host)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := pg.Config{
		BinDir: bin, DataDir: filepath.Join(dir, "data"), Host: host, Port: port,
		HBANetworks: []string{(&net.IPNet{IP: ip.Mask(net.CIDRMask(24, 32)), Mask: net.CIDRMask(24, 32)}).String()}, SocketDir: filepath.Join(dir, "run"),
		Superuser: "postgres", SuperuserPassword: SuperuserPassword, Database: "postgres",
		ReplicationUser: "replicator", ReplicationPassword: ReplicationPassword,
		ConnectTimeout: 3 * time.Second, Logger: log,
	}
	m, err := pg.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.InitPrimary(ctx); err != nil {
		m.Close()
		return nil, fmt.Errorf("coordination server: %w", err)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(cfg.Superuser, cfg.SuperuserPassword),
		Host: fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), Path: "/" + cfg.Database, RawQuery: "sslmode=disable"}
	return &Coordination{Manager: m, DSN: u.String()}, nil
}
