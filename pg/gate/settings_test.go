package gate_test

import (
	"strings"
	"testing"

	"github.com/ramd/ramd/pg/gate"
)

func TestPrimarySettings(t *testing.T) {
	got := gate.PrimarySettings("")
	if got["synchronous_standby_names"] != `FIRST 1 ("ramd_gate")` || got["synchronous_commit"] != "on" {
		t.Errorf("default: %v", got)
	}
	got = gate.PrimarySettings(`we"ird`)
	if got["synchronous_standby_names"] != `FIRST 1 ("we""ird")` {
		t.Errorf("quoting: %v", got)
	}
}

func TestNewRejects(t *testing.T) {
	allowed := func() bool { return true }
	cases := []struct {
		name string
		cfg  gate.Config
		want string
	}{
		{"no Allowed", gate.Config{ConnString: "host=/tmp replication=true"}, "Allowed is required"},
		{"not replication", gate.Config{ConnString: "host=/tmp", Allowed: allowed}, "replication=true"},
		{"logical", gate.Config{ConnString: "host=/tmp replication=database", Allowed: allowed}, "replication=true"},
		{"app name mismatch", gate.Config{ConnString: "host=/tmp replication=true application_name=x", Allowed: allowed}, "application_name"},
		{"bad app name", gate.Config{ConnString: "host=/tmp replication=true", AppName: "*", Allowed: allowed}, "application name"},
		{"bad conn string", gate.Config{ConnString: "host=/tmp port=notaport replication=true", Allowed: allowed}, "connection string"},
	}
	for _, c := range cases {
		_, err := gate.New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "gate: ") {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := gate.New(gate.Config{ConnString: "host=/tmp replication=true application_name=ramd_gate", Allowed: allowed}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
