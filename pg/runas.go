package pg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runAs is the OS identity PostgreSQL runs under.
type runAs struct {
	name string
	uid  int
	gid  int
	home string
	// groups are the supplementary groups (e.g. ssl-cert for a snakeoil
	// key), as su would set them.
	groups []uint32
	// switchUser: we are root and must drop to uid/gid for every
	// PostgreSQL binary, which refuse to run as root.
	switchUser bool
}

// resolveRunAs looks up the user PostgreSQL runs as: name when we are root,
// ourselves otherwise.
func resolveRunAs(name string) (runAs, error) {
	if os.Geteuid() != 0 {
		return currentUser(), nil
	}
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return runAs{}, fmt.Errorf("pg: run-as user %q: %w (PostgreSQL cannot run as root; create the user or set [postgresql] run_as_user)", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return runAs{}, fmt.Errorf("pg: run-as user %q has non-numeric uid/gid %s/%s", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return runAs{}, fmt.Errorf("pg: run-as user %q is root: PostgreSQL refuses to run as root", name)
	}
	return runAs{name: name, uid: uid, gid: gid, home: u.HomeDir, groups: groupIDs(u), switchUser: true}, nil
}

// currentUser describes ourselves; a missing passwd entry (containers) is
// not an error, the uid is enough.
func currentUser() runAs {
	r := runAs{uid: os.Getuid(), gid: os.Getgid(), name: strconv.Itoa(os.Getuid())}
	if u, err := user.Current(); err == nil {
		r.name, r.home = u.Username, u.HomeDir
	}
	return r
}

func groupIDs(u *user.User) []uint32 {
	ids, err := u.GroupIds()
	if err != nil {
		return nil
	}
	var out []uint32
	for _, s := range ids {
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			out = append(out, uint32(n))
		}
	}
	return out
}

// userName renders a uid for messages ("postgres (uid 101)").
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

// command builds an exec.Cmd for a PostgreSQL binary running as the
// run-as user, with a clean PG* environment so that a stray PGDATA or
// PGPORT in ramd's environment cannot redirect it. extraEnv are KEY=VALUE
// pairs added after cleaning.
func (r runAs) command(ctx context.Context, path string, args []string, extraEnv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(r.environ(), extraEnv...)
	// The run-as user may not be able to enter our working directory;
	// every path we pass is absolute.
	cmd.Dir = "/"
	// Own process group: a terminal's ^C meant for ramd does not hit the
	// tools directly, and cancelling reaches their helpers too
	// (pg_basebackup forks a WAL streamer). The postmaster is not affected:
	// pg_ctl starts it in a session of its own.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if r.switchUser {
		cmd.SysProcAttr.Credential = &syscall.Credential{
			Uid: uint32(r.uid), Gid: uint32(r.gid), Groups: r.groups,
		}
	}
	// SIGTERM lets initdb clean up after itself and pg_basebackup
	// (--no-clean) exit leaving its partial output for us to move aside.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	// The postmaster started by pg_ctl could inherit our pipes; never wait
	// for it.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// environ is os.Environ without PG* variables and, when switching user,
// with the run-as user's HOME/USER/LOGNAME (libpq looks for ~/.pgpass).
func (r runAs) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") {
			continue
		}
		if r.switchUser && (k == "HOME" || k == "USER" || k == "LOGNAME") {
			continue
		}
		env = append(env, kv)
	}
	if r.switchUser {
		env = append(env, "HOME="+r.home, "USER="+r.name, "LOGNAME="+r.name)
	}
	return env
}

// chown gives path to the run-as user; a no-op when we are that user.
func (r runAs) chown(path string) error {
	if !r.switchUser {
		return nil
	}
	if err := os.Lchown(path, r.uid, r.gid); err != nil {
		return fmt.Errorf("pg: chown %s to %s: %w", path, r.name, err)
	}
	return nil
}

// mkdirOwned creates dir (and missing parents, mode 0755 so the run-as
// user can traverse them) and gives dir itself mode perm and the run-as
// user as owner. An existing dir is left as it is.
func (r runAs) mkdirOwned(dir string, perm os.FileMode) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("pg: %s exists and is not a directory", dir)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("pg: create %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Mkdir(dir, perm); err != nil && !os.IsExist(err) {
		return fmt.Errorf("pg: create %s: %w", dir, err)
	}
	// Mkdir applies the umask; PostgreSQL insists on exact modes.
	if err := os.Chmod(dir, perm); err != nil {
		return fmt.Errorf("pg: chmod %s: %w", dir, err)
	}
	return r.chown(dir)
}

// writeFileOwned writes a file atomically (temp file + rename in the same
// directory), mode perm, owned by the run-as user, so PostgreSQL never
// reads a half-written configuration.
func (r runAs) writeFileOwned(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("pg: write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("pg: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("pg: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pg: write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return fmt.Errorf("pg: chmod %s: %w", tmp, err)
	}
	if err := r.chown(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pg: write %s: %w", path, err)
	}
	ok = true
	return nil
}
