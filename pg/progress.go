package pg

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"
)

// Long operations (base backup, clone, pg_rewind) log their progress so
// that an operator watching the log during a slow rejoin sees it moving
// (and how far it is) instead of a silence between "started" and
// "finished". pg_basebackup -P and pg_rewind --progress both report
// "<done>/<total> kB (<n>%) ...", ended by '\r' (see scanCRLF).

// progressLogInterval is how often a running operation logs its progress:
// one line per 10 s is enough to see it moving without flooding the log;
// an operation shorter than that logs none.
const progressLogInterval = 10 * time.Second

// progressLog logs "<what> progress" at most every interval.
type progressLog struct {
	log      *slog.Logger
	what     string
	attrs    []any
	interval time.Duration
	now      func() time.Time
	last     time.Time
}

func newProgressLog(log *slog.Logger, what string, attrs ...any) *progressLog {
	p := &progressLog{log: log, what: what, attrs: attrs, interval: progressLogInterval, now: time.Now}
	p.last = p.now()
	return p
}

// report is a BackupProgress.
func (p *progressLog) report(doneKB, totalKB int64) {
	now := p.now()
	if now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	pct := 0.0
	if totalKB > 0 {
		pct = float64(int64(float64(doneKB)*1000/float64(totalKB))) / 10
	}
	p.log.Info(p.what+" progress", append([]any{"done_kb", doneKB, "total_kb", totalKB, "percent", pct}, p.attrs...)...)
}

// scanProgress reads a tool's stderr: progress reports go to progress
// (when set), every other line to out.
func scanProgress(r io.Reader, out *bytes.Buffer, progress BackupProgress) {
	sc := bufio.NewScanner(r)
	sc.Split(scanCRLF)
	for sc.Scan() {
		line := sc.Text()
		if mm := progressRe.FindStringSubmatch(line); mm != nil {
			done, _ := strconv.ParseInt(mm[1], 10, 64)
			total, _ := strconv.ParseInt(mm[2], 10, 64)
			if progress != nil {
				progress(done, total)
			}
			continue
		}
		if line != "" {
			out.WriteString(line + "\n")
		}
	}
}

// runProgress is run for a tool that reports progress on stderr: the
// reports go to progress, the rest of its output is returned (and quoted
// in the error) as run does.
func (m *Manager) runProgress(ctx context.Context, what, bin string, args []string, progress BackupProgress, extraEnv ...string) (string, error) {
	cmd := m.user.command(ctx, filepath.Join(m.cfg.BinDir, bin), args, extraEnv...)
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", fmt.Errorf("pg: %s: %w", what, err)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("pg: %s: %w", what, err)
	}
	// Stdout and the scanner both write out; stdout is unused by these
	// tools, so the scanner gets a buffer of its own.
	var errOut bytes.Buffer
	scanProgress(stderr, &errOut, progress)
	err = cmd.Wait()
	out.Write(errOut.Bytes())
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%w)", err, ctxErr)
		}
		return out.String(), fmt.Errorf("pg: %s: %w: %s", what, err, tail(out.String(), 12))
	}
	return out.String(), nil
}
