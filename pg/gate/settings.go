package gate

import "strings"

// PrimarySettings are the postgresql.conf settings a primary fenced by a
// gate named appName needs, as raw values (the conf writer quotes them).
//
// In every mode synchronous_standby_names names the gate alone: PostgreSQL
// cannot express "the gate AND k of these replicas" in one setting, and
// any list that also names replicas (FIRST n, ANY n) lets commits complete
// without the gate once enough replicas are connected: no fence. So the
// synchronous modes keep the gate as the only synchronous standby and make
// it wait for the replicas instead (Config.Ceiling: the position the
// quorum has flushed, per pg_stat_replication; daemon/syncrep.go). So the
// setting is the same in every mode. See doc.go.
//
// synchronous_commit is set to on (the default) so that the server-wide
// value waits for the gate; sessions can still lower it (see doc.go).
func PrimarySettings(appName string) map[string]string {
	if appName == "" {
		appName = DefaultAppName
	}
	return map[string]string{
		"synchronous_standby_names": "FIRST 1 (" + quoteName(appName) + ")",
		"synchronous_commit":        "on",
	}
}

// quoteName double-quotes a standby name for synchronous_standby_names, so
// that any name, even one New would refuse, cannot change the list's
// meaning. PostgreSQL compares the names case-insensitively either way.
func quoteName(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
