package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestNameAndFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		name string
		node int
		err  string
	}{
		{[]string{"b1"}, "b1", 0, ""},
		{[]string{"b1", "--node", "2"}, "b1", 2, ""},
		{[]string{"--node", "2", "b1"}, "b1", 2, ""},
		{[]string{"--node", "2"}, "", 2, "a backup name is required"},
		{[]string{"b1", "b2"}, "", 0, `unexpected argument "b2"`},
		{[]string{"b1", "--nod", "2"}, "", 0, "flag provided but not defined"},
	} {
		fs := flag.NewFlagSet("create", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		node := fs.Int("node", 0, "")
		name, err := nameAndFlags(fs, c.args)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || name != c.name || *node != c.node {
			t.Errorf("%q: %q %d %v", c.args, name, *node, err)
		}
	}
}

func TestProgressPlainLines(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, false)
	p.show(0, "copying")
	p.show(0.4, "copying")
	p.show(50, "copying")
	p.show(100, "waiting")
	p.done()
	if got := out.String(); got != "  0% copying\n 50% copying\n100% waiting\n" {
		t.Errorf("plain progress:\n%s", got)
	}
	out.Reset()
	q := newProgress(&out, true)
	q.show(10, "x")
	if out.Len() != 0 {
		t.Errorf("--json progress printed %q", out.String())
	}
}

func TestBackupUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"backup"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "create, list, restore or delete") {
		t.Errorf("ramctl backup: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"backup", "restore", "b1"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "--target") {
		t.Errorf("ramctl backup restore without --target: %d %s", code, errb.String())
	}
}
