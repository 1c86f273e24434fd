package configs

import (
	"maps"
	"testing"
)

func TestParametersTypes(t *testing.T) {
	c := mustParse(t, minimal+`
[postgresql.parameters]
shared_buffers = "1GB"
max_connections = 200
random_page_cost = 1.1
checkpoint_completion_target = 0.9
hot_standby_feedback = true
jit = false
"pg_stat_statements.max" = 10000
shared_preload_libraries = ""
wal_level = "logical"
hot_standby = "on"
`)
	want := Parameters{
		"shared_buffers":               "1GB",
		"max_connections":              "200",
		"random_page_cost":             "1.1",
		"checkpoint_completion_target": "0.9",
		"hot_standby_feedback":         "on",
		"jit":                          "off",
		"pg_stat_statements.max":       "10000",
		"shared_preload_libraries":     "",
		"wal_level":                    "logical",
		"hot_standby":                  "on",
	}
	if !maps.Equal(c.PostgreSQL.Parameters, want) {
		t.Errorf("got %v\nwant %v", c.PostgreSQL.Parameters, want)
	}
}

func TestParametersErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`nested = { a = 1 }`, `"nested": nested tables are not allowed`},
		{"[postgresql.parameters.sub]\nx = 1", `"sub": nested tables`},
		{`libs = ["a", "b"]`, `"libs": arrays are not allowed`},
		{`when = 2024-01-01`, `"when": expected a string, integer, float or boolean`},
		{`x = nan`, `"x": NaN`},
		{`Max_Connections = 5`, `"Max_Connections": not a PostgreSQL parameter name`},
		{`"9lives" = 5`, `"9lives": not a PostgreSQL parameter name`},
		{`"a-b" = 5`, `not a PostgreSQL parameter name`},
		{`port = 5433`, `"port": set by ramd from [postgresql] port`},
		{`listen_addresses = "*"`, `[postgresql] host`},
		{`data_directory = "/x"`, `[cluster] data_directory`},
		{`unix_socket_directories = "/tmp"`, `[postgresql] socket_directory`},
		{`hba_file = "/x"`, `hba_networks`},
		{`ident_file = "/x"`, `managed by ramd`},
		{`config_file = "/x"`, `managed by ramd`},
		{`primary_conninfo = "host=x"`, `managed by ramd`},
		{`primary_slot_name = "x"`, `managed by ramd`},
		{`synchronous_standby_names = "*"`, `managed by ramd`},
		{`include = "/x"`, `directive`},
		{`wal_level = "minimal"`, `replica or logical`},
		{`wal_level = "MINIMAL"`, `replica or logical`},
		{`hot_standby = false`, `must stay on`},
		{`hot_standby = "off"`, `must stay on`},
		{`hot_standby = "no"`, `must stay on`},
		{`hot_standby = 0`, `must stay on`},
		{`max_wal_senders = 0`, `above 0`},
		{`max_replication_slots = 0`, `above 0`},
		{`application_name = "a\nb"`, `line break`},
	} {
		msg := parseErr(t, minimal+"[postgresql.parameters]\n"+tc.body+"\n")
		wantContains(t, msg, "configs: ramd.toml:", "postgresql.parameters", tc.want)
	}
	// Not a table at all.
	msg := parseErr(t, minimal+"[postgresql]\nparameters = 5\n")
	wantContains(t, msg, "postgresql.parameters", "expected a table")
}

func TestParametersSet(t *testing.T) {
	var p Parameters
	if err := p.Set("work_mem", "64MB"); err != nil || p["work_mem"] != "64MB" {
		t.Fatalf("Set: %v %v", p, err)
	}
	if err := p.Set("port", "1"); err == nil {
		t.Error("Set(port) succeeded")
	}
	if _, ok := p["port"]; ok {
		t.Error("a refused setting was stored")
	}
}

func TestPGBoolFalse(t *testing.T) {
	for v, want := range map[string]bool{
		"off": true, "of": true, "0": true, "false": true, "f": true, "fa": true, "no": true, "n": true,
		"on": false, "o": false, "true": false, "1": false, "yes": false, "": false, "nope": false,
	} {
		if got := pgBoolFalse(v); got != want {
			t.Errorf("pgBoolFalse(%q) = %v", v, got)
		}
	}
}
