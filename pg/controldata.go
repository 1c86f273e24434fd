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
