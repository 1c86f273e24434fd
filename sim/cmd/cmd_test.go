package cmd

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run([]string{"-seeds", "4", "-duration", "40s"}, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "violations: 0") {
		t.Fatalf("no summary:\n%s", out.String())
	}
	out.Reset()
	if code := Run([]string{"-replay", "../testdata/isolate-primary.txt"}, &out, &errb); code != ExitOK {
		t.Fatalf("replay exit %d:\n%s", code, out.String())
	}
	if code := Run([]string{"-nodes", "2"}, &out, &errb); code != ExitUsage {
		t.Fatalf("2 nodes: exit %d", code)
	}
	out.Reset()
	if code := Run([]string{"-election", "pglock", "-nodes", "2", "-seeds", "3", "-duration", "40s"}, &out, &errb); code != ExitOK || !strings.Contains(out.String(), "pglock election, 2 nodes") {
		t.Fatalf("pglock: exit %d:\n%s", code, out.String())
	}
	out.Reset()
	if code := Run([]string{"-replay", "../testdata/pglock-two-node-failover.txt"}, &out, &errb); code != ExitOK || !strings.Contains(out.String(), "pglock election") {
		t.Fatalf("pglock replay exit %d:\n%s", code, out.String())
	}
	if code := Run([]string{"-election", "raft"}, &out, &errb); code != ExitUsage {
		t.Fatalf("unknown backend: exit %d", code)
	}
	if code := Run([]string{"-bogus"}, &out, &errb); code != ExitUsage {
		t.Fatalf("bad flag: exit %d", code)
	}
}
