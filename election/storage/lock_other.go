//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package storage

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrLocked: another Store (normally another ramd) holds the directory.
var ErrLocked = errors.New("storage: election state directory is in use")

type dirLock struct{}

// lockDir refuses to run without flock: an unlocked store could be shared
// by two daemons, which would corrupt the election log.
func lockDir(dir string) (*dirLock, error) {
	return nil, fmt.Errorf("storage: no directory lock on %s, refusing to open %s", runtime.GOOS, dir)
}

func (l *dirLock) unlock() error { return nil }
