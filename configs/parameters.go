package configs

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// parameterNameRE is what a postgresql.conf name may look like. Upper case
// is refused although PostgreSQL folds it: keeping one spelling per setting
// is what lets the managed-setting check below be complete.
var parameterNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_.]*$`)

// UnmarshalTOML implements toml.Unmarshaler: it accepts a table whose values
// are strings, integers, floats or booleans and stores each in its
// postgresql.conf form (booleans as "on"/"off"). Nested tables, arrays and
// datetimes are errors naming the key. Entries are merged into p, as the
// TOML decoder does for ordinary maps.
func (p *Parameters) UnmarshalTOML(data any) error {
	m, ok := data.(map[string]any)
	if !ok {
		return fmt.Errorf("configs: expected a table of postgresql.conf settings, got %s", describeTOML(data))
	}
	if *p == nil {
		*p = make(Parameters, len(m))
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	// Sorted so that with several bad entries the reported one is stable.
	sort.Strings(names)
	for _, name := range names {
		value, err := parameterValue(m[name])
		if err != nil {
			return fmt.Errorf("configs: %q: %w", name, err)
		}
		if err := p.Set(name, value); err != nil {
			return err
		}
	}
	return nil
}

// Set checks one setting (see CheckParameter) and stores it.
func (p *Parameters) Set(name, value string) error {
	if err := CheckParameter(name, value); err != nil {
		return err
	}
	if *p == nil {
		*p = make(Parameters)
	}
	(*p)[name] = value
	return nil
}

// parameterValue renders a decoded TOML value as postgresql.conf text.
func parameterValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", fmt.Errorf("%v is not a value PostgreSQL accepts", x)
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		if x {
			return "on", nil
		}
		return "off", nil
	case map[string]any, []map[string]any:
		return "", fmt.Errorf("nested tables are not allowed: postgresql.conf settings are flat (write \"a.b\" = ... for a dotted name)")
	case []any:
		return "", fmt.Errorf("arrays are not allowed: write a list setting as one string, e.g. \"pg_stat_statements,auto_explain\"")
	}
	return "", fmt.Errorf("expected a string, integer, float or boolean, got %s", describeTOML(v))
}

// CheckParameter reports whether name = value may be passed to PostgreSQL
// through [postgresql.parameters]. It refuses malformed names, values that
// cannot be written to postgresql.conf, and the settings ramd manages itself
// (with the key to use instead): letting a user override them would make
// ramd's view of the server wrong (port, socket, data directory) or break
// replication and failover (wal_level, primary_conninfo...).
func CheckParameter(name, value string) error {
	if !parameterNameRE.MatchString(name) {
		return fmt.Errorf("configs: %q: not a PostgreSQL parameter name (lowercase letters, digits, '_' and '.', not starting with a digit or '.')", name)
	}
	if strings.ContainsAny(value, "\n\r\x00") {
		return fmt.Errorf("configs: %q: value contains a line break or NUL byte, which postgresql.conf cannot hold", name)
	}
	if why := managedParameter(name, value); why != "" {
		return fmt.Errorf("configs: %q: %s", name, why)
	}
	return nil
}

// managedParameter explains why ramd refuses name = value, or returns "".
// A switch rather than a package-level map: nothing here can be modified at
// run time.
func managedParameter(name, value string) string {
	v := strings.ToLower(strings.TrimSpace(value))
	switch name {
	case "port":
		return "set by ramd from [postgresql] port; set that instead"
	case "listen_addresses":
		return "set by ramd from [postgresql] host; set that instead"
	case "data_directory":
		return "set by ramd from [cluster] data_directory; set that instead"
	case "unix_socket_directories":
		return "set by ramd from [postgresql] socket_directory; set that instead"
	case "hba_file", "ident_file":
		return "managed by ramd, which generates pg_hba.conf from [postgresql] hba_networks"
	case "config_file":
		return "managed by ramd, which writes the configuration itself"
	case "primary_conninfo", "primary_slot_name":
		return "managed by ramd, which points each standby at the current primary"
	case "synchronous_standby_names":
		return "managed by ramd, which decides which standbys are synchronous"
	case "synchronous_commit":
		if v := strings.ToLower(strings.TrimSpace(v)); v == "off" || v == "local" || pgBoolFalse(v) {
			return "off or local would let commits skip the lease gate that fences an old primary ([failover] fencing); leave it on"
		}
	case "include", "include_dir", "include_if_exists":
		return "a postgresql.conf directive, not a parameter; it would bypass these checks"
	case "wal_level":
		if v == "minimal" {
			return "must be replica or logical: standbys stream the WAL"
		}
	case "hot_standby":
		if pgBoolFalse(v) {
			return "must stay on: ramd connects to standbys to check their health"
		}
	case "max_wal_senders":
		if v == "0" {
			return "must be above 0: standbys stream through WAL senders"
		}
	case "max_replication_slots":
		if v == "0" {
			return "must be above 0: ramd gives each standby a replication slot"
		}
	}
	return ""
}

// pgBoolFalse reports whether PostgreSQL reads v (lower case) as false:
// off, false, no, 0, or an unambiguous prefix of false or no.
func pgBoolFalse(v string) bool {
	switch v {
	case "off", "of", "0":
		return true
	}
	return v != "" && (strings.HasPrefix("false", v) || strings.HasPrefix("no", v))
}
