package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A node whose WAL went past the point where the current primary's
// timeline forked off cannot follow that primary as it is: pg_rewind (or a
// re-clone) must replace its history first. The daemon learns that in
// three ways — it ran as a primary and was replaced, its standby logged
// that the new timeline forked off before its recovery point, or it
// refused to start because the requested timeline does not contain its
// minimum recovery point — and it must keep knowing it until a rewind or
// a re-clone has succeeded:
//
//   - a failed pg_rewind leaves standby.signal in the directory (so it
//     never starts as a second primary), which makes the directory look
//     like an ordinary standby that only needs re-pointing; restarted as
//     one, it cannot follow the new timeline and restarts in a loop;
//   - the daemon itself may restart between the two.
//
// So the knowledge lives in a file in the state directory, written before
// the first rewind attempt and removed only after a success (found by
// chaos runs, docs/benchmarks.md "Chaos": bugs 1 and 2).

// rejoinFile is the marker in cluster.state_directory.
const rejoinFile = "rejoin_needed"

func (d *Daemon) rejoinPath() string {
	return filepath.Join(d.cfg.Cluster.StateDirectory, rejoinFile)
}

// rejoinNeeded reports whether the data directory must be rewound or
// re-cloned before it can follow a primary.
func (d *Daemon) rejoinNeeded() bool {
	_, err := os.Stat(d.rejoinPath())
	return err == nil
}

// markRejoinNeeded records why the data directory must be rewound. The
// file holds the reason and the time, for an operator who finds it.
func (d *Daemon) markRejoinNeeded(why string) error {
	if d.rejoinNeeded() {
		return nil
	}
	line := time.Now().UTC().Format(time.RFC3339) + " " + strings.ReplaceAll(why, "\n", " ") + "\n"
	return writeFileAtomic(d.rejoinPath(), []byte(line), 0o600)
}

// clearRejoinNeeded is called once a rewind or re-clone has succeeded.
func (d *Daemon) clearRejoinNeeded() {
	if err := os.Remove(d.rejoinPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Error("removing the rejoin marker failed; the next rejoin will rewind again", "file", d.rejoinPath(), "error", err)
	}
}
