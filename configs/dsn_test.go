package configs

import (
	"strings"
	"testing"
)

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"postgres://ramd:s3cret@db:5432/coord?sslmode=require", "postgres://ramd:<redacted>@db:5432/coord?sslmode=require"},
		{"postgresql://ramd@db/coord?password=s3cret&sslmode=disable", "postgresql://ramd@db/coord?password=<redacted>&sslmode=disable"},
		{"postgres://ramd@db/coord", "postgres://ramd@db/coord"},
		{"host=db user=ramd password=s3cret dbname=coord", "host=db user=ramd password=<redacted> dbname=coord"},
		{"host=db password = 's3 cret' dbname=coord", "host=db password = <redacted> dbname=coord"},
		{`host=db password='s3 \'cret' dbname=coord`, "host=db password=<redacted> dbname=coord"},
		{"postgres://u:s3cret@[bad", "<redacted>"},
	} {
		got := RedactDSN(tc.in)
		if got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestElectionValidation(t *testing.T) {
	base := "[cluster]\nnode_id = 1\ndata_directory = \"/var/lib/ramd/data\"\n"
	for _, tc := range []struct{ extra, want string }{
		{"election = \"raft\"\n", `configs: cluster.election: "raft": must be "quorum" or "pglock"`},
		{"election = \"pglock\"\n", `configs: cluster.coordination_dsn: required with election = "pglock"`},
		{"coordination_dsn = \"host=db\"\n", `configs: cluster.coordination_dsn: set, but cluster.election is "quorum"`},
		{"election = \"pglock\"\ncoordination_dsn = \"s3cret\"\n", `configs: cluster.coordination_dsn: neither a postgres:// URL nor keyword=value pairs`},
	} {
		_, err := Parse("/etc/ramd/ramd.toml", []byte(base+tc.extra), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.extra, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error shows the secret: %v", tc.extra, err)
		}
	}
	c, err := Parse("/etc/ramd/ramd.toml", []byte(base+"election = \"pglock\"\ncoordination_dsn = \"postgres://ramd:s3cret@db/coord\"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Redacted(); strings.Contains(r.Cluster.CoordinationDSN, "s3cret") || c.Cluster.CoordinationDSN != "postgres://ramd:s3cret@db/coord" {
		t.Errorf("redacted %q, original %q", r.Cluster.CoordinationDSN, c.Cluster.CoordinationDSN)
	}
}
