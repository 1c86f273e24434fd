package pg

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// run runs one PostgreSQL binary from the bin dir as the run-as user and
// returns its combined output. A failure is "pg: <what>: <exit error>:
// <output tail>" so the operator sees PostgreSQL's own explanation.
func (m *Manager) run(ctx context.Context, what, bin string, args []string, extraEnv ...string) (string, error) {
	cmd := m.user.command(ctx, filepath.Join(m.cfg.BinDir, bin), args, extraEnv...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%w)", err, ctxErr)
		}
		return out.String(), fmt.Errorf("pg: %s: %w: %s", what, err, tail(out.String(), 12))
	}
	return out.String(), nil
}

// tail keeps the last n non-empty lines of s on one line, which is where
// PostgreSQL tools print the reason they failed.
func tail(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	return strings.Join(lines, " | ")
}

// fileTail is tail() of the end of a file (at most 16 KiB read), "" when
// it cannot be read.
func fileTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const limit = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		_, _ = f.Seek(-limit, io.SeekEnd)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(f)
	return tail(buf.String(), n)
}

// waitSeconds is the pg_ctl -t value: what is left of ctx's deadline,
// capped by def, at least 1 s.
func waitSeconds(ctx context.Context, def time.Duration) string {
	d := def
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < d {
			d = left
		}
	}
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
