package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogFileReopen: a node logs as text to [logging] file; logrotate's
// rename + SIGHUP makes it continue in a new file at the same path, while
// the renamed file keeps what was written before.
func TestLogFileReopen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := launch(t, 1, "\n[logging]\nformat = \"text\"\nfile = \"node.log\"\n")
	n := c.Nodes[0]
	// Relative to the configuration file's directory.
	path := filepath.Join(filepath.Dir(n.ConfigPath), "node.log")
	waitWritable(t, c, 60*time.Second, nil)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `message="ramd started"`) || !strings.Contains(string(b), "component=daemon") {
		t.Fatalf("%s has no text-format start line:\n%s", path, b)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := n.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			return err.Error()
		}
		if !strings.Contains(string(b), `message="log file reopened"`) || !strings.Contains(string(b), `message="configuration reloaded"`) {
			return "the new file lacks the reopen and reload lines:\n" + string(b)
		}
		return ""
	})
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(old), `message="ramd started"`) || strings.Contains(string(old), "log file reopened") {
		t.Errorf("the rotated file should hold the lines before the reopen only:\n%s", old)
	}
	if _, err := n.Status(ctx); err != nil {
		t.Fatalf("the node no longer answers after SIGHUP: %v", err)
	}
}
