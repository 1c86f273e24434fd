package pg

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// connectLocal opens a superuser session over the unix socket (trust).
func (m *Manager) connectLocal(ctx context.Context) (*pgx.Conn, error) {
	conn, err := m.connect(ctx, m.ConnString())
	if err != nil {
		return nil, fmt.Errorf("connect to local server on %s: %w", m.cfg.SocketDir, err)
	}
	return conn, nil
}

// connectRemote opens a superuser session to a peer over TCP with the
// password (the same superuser exists on every node of a cluster).
func (m *Manager) connectRemote(ctx context.Context, ep Endpoint) (*pgx.Conn, error) {
	conn, err := m.connect(ctx, m.remoteConnString(ep))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", ep, err)
	}
	return conn, nil
}

func (m *Manager) remoteConnString(ep Endpoint) string {
	kv := []string{
		"host=" + conninfoQuote(ep.Host),
		"port=" + strconv.Itoa(ep.Port),
		"user=" + conninfoQuote(m.cfg.Superuser),
		"password=" + conninfoQuote(m.cfg.SuperuserPassword),
		"dbname=" + conninfoQuote(m.cfg.Database),
		"application_name=ramd",
		"connect_timeout=" + strconv.Itoa(m.connectTimeoutSeconds()),
	}
	if m.cfg.SSLMode != "" {
		kv = append(kv, "sslmode="+conninfoQuote(m.cfg.SSLMode))
	}
	return strings.Join(kv, " ")
}

// connect bounds the dial by ConnectTimeout even when ctx has no deadline.
func (m *Manager) connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = m.cfg.ConnectTimeout
	return pgx.ConnectConfig(ctx, cfg)
}
