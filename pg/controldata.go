package pg

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// SystemID reads the database system identifier with pg_controldata, which
// works whether or not the server runs. Clones share their source's id;
// a different id means a different cluster.
func (m *Manager) SystemID(ctx context.Context) (uint64, error) {
	fields, err := m.controlData(ctx)
	if err != nil {
		return 0, err
	}
	raw, ok := fields["Database system identifier"]
	if !ok {
		return 0, fmt.Errorf("pg: pg_controldata: no system identifier in output")
	}
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pg: pg_controldata: system identifier %q: %w", raw, err)
	}
	return id, nil
}

// controlData runs pg_controldata and returns its "key: value" lines. The C
// locale keeps the keys untranslated.
func (m *Manager) controlData(ctx context.Context) (map[string]string, error) {
	out, err := m.run(ctx, "pg_controldata", "pg_controldata", []string{"-D", m.cfg.DataDir}, "LC_ALL=C", "LANG=C")
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return fields, nil
}

// Control file cluster states (pg_controldata "Database cluster state",
// C locale) that matter to ramd.
const (
	// ControlShutDown: a primary shut down cleanly (smart or fast stop).
	ControlShutDown = "shut down"
	// ControlShutDownInRecovery: a standby shut down cleanly.
	ControlShutDownInRecovery = "shut down in recovery"
	// ControlInProduction: a primary is running, or crashed or was stopped
	// with StopImmediate (Fence): the next start runs crash recovery.
	ControlInProduction = "in production"
	// ControlInArchiveRecovery: a standby is running, or crashed.
	ControlInArchiveRecovery = "in archive recovery"
)

// ControlState is the "Database cluster state" pg_controldata reports, e.g.
// "shut down", "shut down in recovery", "in production" (running, or
// stopped without a shutdown checkpoint), "in archive recovery". It works
// whether or not the server runs.
func (m *Manager) ControlState() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StartTimeout)
	defer cancel()
	return m.controlState(ctx)
}

func (m *Manager) controlState(ctx context.Context) (string, error) {
	fields, err := m.controlData(ctx)
	if err != nil {
		return "", err
	}
	s, ok := fields["Database cluster state"]
	if !ok {
		return "", fmt.Errorf("pg: pg_controldata: no cluster state in output")
	}
	return s, nil
}

// cleanlyShutDown: pg_rewind accepts the target only in these states.
func cleanlyShutDown(state string) bool {
	return state == ControlShutDown || state == ControlShutDownInRecovery
}

// Timeline is the server's current timeline: from SQL when it runs
// (Check), otherwise from the control file (the later of the last
// checkpoint's timeline and, for a standby, the minimum recovery point's).
func (m *Manager) Timeline(ctx context.Context) (uint32, error) {
	if m.running() {
		if h := m.Check(ctx); h.Accepting && h.Timeline != 0 {
			return h.Timeline, nil
		}
	}
	fields, err := m.controlData(ctx)
	if err != nil {
		return 0, err
	}
	var tli uint64
	for _, k := range []string{"Latest checkpoint's TimeLineID", "Min recovery ending loc's timeline"} {
		raw, ok := fields[k]
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(raw, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("pg: pg_controldata: %s %q: %w", k, raw, err)
		}
		tli = max(tli, v)
	}
	if tli == 0 {
		return 0, fmt.Errorf("pg: pg_controldata: no timeline in output")
	}
	return uint32(tli), nil
}

// ShutdownPoint is where a cleanly stopped server's last WAL record (its
// shutdown checkpoint) starts, and its timeline: a replica that received
// WAL beyond it holds everything the server ever wrote. It fails unless
// the control file says "shut down" (a crashed or fenced server may have
// written more than its last checkpoint).
func (m *Manager) ShutdownPoint(ctx context.Context) (timeline uint32, at LSN, err error) {
	fields, err := m.controlData(ctx)
	if err != nil {
		return 0, 0, err
	}
	if s := fields["Database cluster state"]; s != ControlShutDown {
		return 0, 0, fmt.Errorf("pg: not cleanly shut down (cluster state %q)", s)
	}
	at, err = ParseLSN(fields["Latest checkpoint location"])
	if err != nil {
		return 0, 0, fmt.Errorf("pg: pg_controldata: latest checkpoint location: %w", err)
	}
	tli, err := strconv.ParseUint(fields["Latest checkpoint's TimeLineID"], 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("pg: pg_controldata: latest checkpoint's timeline: %w", err)
	}
	return uint32(tli), at, nil
}
