package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// bootstrapMarker is written into the data directory right after initdb
// and removed once the roles exist, so that InitPrimary can finish a
// bootstrap that was interrupted after initdb (crash, timeout) instead of
// refusing the then non-empty directory.
const bootstrapMarker = "ramd.bootstrap-pending"

// InitPrimary creates a new cluster in the (empty) data directory with
// initdb, writes ramd's configuration, starts it and creates the
// replication role. It refuses a non-empty directory, except one left by an
// interrupted InitPrimary, which it finishes.
func (m *Manager) InitPrimary(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	st, err := m.DataState()
	if err != nil {
		return err
	}
	switch {
	case st == StateEmpty:
		if err := m.initdb(ctx); err != nil {
			return err
		}
	case fileExists(m.dataPath(bootstrapMarker)):
		m.log.Info("resuming interrupted bootstrap", "data_dir", m.cfg.DataDir)
	default:
		return fmt.Errorf("pg: bootstrap: %s already holds a cluster; refusing to initdb over it", m.cfg.DataDir)
	}
	if err := m.start(ctx); err != nil {
		return err
	}
	if err := m.ensureRoles(ctx); err != nil {
		return err
	}
	if err := os.Remove(m.dataPath(bootstrapMarker)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("pg: bootstrap: %w", err)
	}
	m.log.Info("bootstrap complete", "data_dir", m.cfg.DataDir)
	return nil
}

func (m *Manager) initdb(ctx context.Context) error {
	if err := m.prepareDataDir(); err != nil {
		return err
	}
	args := []string{"-D", m.cfg.DataDir, "-U", m.cfg.Superuser,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"}
	if m.cfg.SuperuserPassword != "" {
		pwfile, err := m.writePwfile()
		if err != nil {
			return err
		}
		defer os.Remove(pwfile)
		args = append(args, "--pwfile="+pwfile)
	}
	m.log.Info("initdb started", "data_dir", m.cfg.DataDir)
	t0 := time.Now()
	if _, err := m.run(ctx, "initdb", "initdb", args); err != nil {
		return err
	}
	m.log.Info("initdb finished", "data_dir", m.cfg.DataDir, "duration", time.Since(t0).Round(time.Millisecond).String())
	return m.user.writeFileOwned(m.dataPath(bootstrapMarker), []byte("initdb done; roles not yet created\n"), 0o600)
}

// prepareDataDir makes the (empty or missing) data directory exist with
// mode 0700 and the run-as user as owner; an existing empty directory
// (e.g. a mount point owned by root) is taken over.
func (m *Manager) prepareDataDir() error {
	dir := m.cfg.DataDir
	if _, err := os.Stat(dir); err != nil {
		return m.user.mkdirOwned(dir, 0o700)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("pg: chmod %s: %w", dir, err)
	}
	return m.user.chown(dir)
}

// writePwfile writes the superuser password to a 0600 file owned by the
// run-as user, for initdb --pwfile (never on a command line). It goes into
// the socket directory, which that user can always reach, unlike $TMPDIR.
func (m *Manager) writePwfile() (string, error) {
	if err := m.user.mkdirOwned(m.cfg.SocketDir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(m.cfg.SocketDir, ".ramd-pwfile-")
	if err != nil {
		return "", fmt.Errorf("pg: initdb password file: %w", err)
	}
	name := f.Name()
	_, werr := f.WriteString(m.cfg.SuperuserPassword + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr, m.user.chown(name)); err != nil {
		_ = os.Remove(name)
		return "", fmt.Errorf("pg: initdb password file: %w", err)
	}
	return name, nil
}

// EnsureRoles creates the replication role if it is missing and (re)sets
// its and the superuser's passwords from the configuration. It is
// idempotent; it needs a running primary.
func (m *Manager) EnsureRoles(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	return m.ensureRoles(ctx)
}

func (m *Manager) ensureRoles(ctx context.Context) error {
	conn, err := m.connectLocal(ctx)
	if err != nil {
		return fmt.Errorf("pg: roles: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The statements below carry passwords: keep them out of the server
	// log even if one fails (log_min_error_statement logs failing SQL) or
	// is slow (log_min_duration_statement logs the statement and its
	// parameters).
	// synchronous_commit = local: with the lease gate configured, a commit
	// waits for the daemon's confirmation, which needs the election this
	// bootstrap comes before.
	if _, err := conn.Exec(ctx, "SET log_statement = 'none'; SET log_min_error_statement = 'panic'; SET log_min_duration_statement = -1; SET synchronous_commit = 'local'"); err != nil {
		return fmt.Errorf("pg: roles: %w", err)
	}
	if err := createRoleIfMissing(ctx, conn, m.cfg.ReplicationUser); err != nil {
		return err
	}
	if err := alterRole(ctx, conn, m.cfg.ReplicationUser, "REPLICATION LOGIN", m.cfg.ReplicationPassword); err != nil {
		return err
	}
	if m.cfg.ReplicationPassword == "" {
		m.log.Warn("replication role has no password: standbys cannot authenticate", "role", m.cfg.ReplicationUser)
	}
	if m.cfg.SuperuserPassword != "" {
		return alterRole(ctx, conn, m.cfg.Superuser, "", m.cfg.SuperuserPassword)
	}
	return nil
}

func createRoleIfMissing(ctx context.Context, conn *pgx.Conn, role string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
		return fmt.Errorf("pg: roles: %w", err)
	}
	if exists {
		return nil
	}
	// Utility statements take no bind parameters: quote the identifier.
	_, err := conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" WITH REPLICATION LOGIN")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42710" {
		return nil // created concurrently
	}
	if err != nil {
		return fmt.Errorf("pg: create role %s: %w", role, err)
	}
	return nil
}

// alterRole sets attrs (constant SQL keywords) and the password. The
// statement is built server-side by format(%I, %L), so quoting follows
// the server's own rules whatever the password contains.
func alterRole(ctx context.Context, conn *pgx.Conn, role, attrs, password string) error {
	tmpl := "ALTER ROLE %I WITH " + attrs
	if password != "" {
		tmpl += " PASSWORD %L"
	}
	var stmt string
	if err := conn.QueryRow(ctx, "SELECT format($1::text, $2::text, $3::text)", tmpl, role, password).Scan(&stmt); err != nil {
		return fmt.Errorf("pg: alter role %s: %w", role, err)
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("pg: alter role %s: %w", role, err)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
