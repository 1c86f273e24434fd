package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/ramd/ramd/pg"
)

// Coordination is a standalone PostgreSQL server a test uses as the
// pglock election backend's coordination database.
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
	cfg := Config(t)
	m := NewManager(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.InitPrimary(ctx); err != nil {
		t.Fatalf("pgtest: coordination server: %v", err)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(cfg.Superuser, cfg.SuperuserPassword),
		Host: fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), Path: "/" + cfg.Database, RawQuery: "sslmode=disable"}
	return &Coordination{Manager: m, DSN: u.String()}
}
