//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked: another Store (normally another ramd) holds the directory.
var ErrLocked = errors.New("storage: election state directory is in use")

const lockName = "LOCK"

// dirLock is an flock(2) on dir/LOCK. The kernel drops it when the
// process dies, so a crash never leaves a stale lock behind (unlike an
// O_EXCL lock file), and two daemons pointed at one state directory can
// never interleave writes to the same log.
type dirLock struct {
	f *os.File
}

func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: open lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = " by pid " + pid
			}
		}
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked%s; is another ramd using the same [cluster] state_directory?", ErrLocked, path, holder)
		}
		return nil, fmt.Errorf("storage: lock %s: %w", path, err)
	}
	// The pid is only a hint for the error above; the flock is the lock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// unlock releases the lock. The file stays: removing it would race with a
// process that opened it and is about to flock it.
func (l *dirLock) unlock() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("storage: unlock: %w", err)
	}
	return nil
}
