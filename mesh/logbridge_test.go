package mesh

import (
	"bytes"
	"log"
	"log/slog"
	"strings"
	"testing"
)

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct{ in, level, msg string }{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n", "DEBUG", "Stream connection from=127.0.0.1:1"},
		{"[ERR] memberlist: Failed to send", "ERR", "Failed to send"},
		{"no prefix at all", "", "no prefix at all"},
		{"[NOTALEVELATALL] x", "", "[NOTALEVELATALL] x"},
		{"", "", ""},
	} {
		level, msg := parseLogLine(tc.in)
		if level != tc.level || msg != tc.msg {
			t.Errorf("%q: got %q %q", tc.in, level, msg)
		}
	}
}

func TestSuspectedNode(t *testing.T) {
	if n, ok := suspectedNode("INFO", "Suspect node-2 has failed, no acks received"); !ok || n != "node-2" {
		t.Fatal(n, ok)
	}
	if n, ok := suspectedNode("INFO", "Suspect a b has failed has failed, no acks received"); !ok || n != "a b has failed" {
		t.Fatal(n, ok)
	}
	for _, bad := range [][2]string{
		{"DEBUG", "Suspect x has failed, no acks received"},
		{"INFO", "Suspect  has failed, no acks received"},
		{"INFO", "Marking x as failed, suspect timeout reached (0 peer confirmations)"},
	} {
		if _, ok := suspectedNode(bad[0], bad[1]); ok {
			t.Errorf("%v matched", bad)
		}
	}
}

func TestLogBridgeRoutesAtDebug(t *testing.T) {
	var out bytes.Buffer
	var seen []string
	b := &logBridge{
		log:       slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})),
		onMessage: func(level, msg string) { seen = append(seen, level+"|"+msg) },
	}
	l := log.New(b, "", 0)
	l.Printf("[WARN] memberlist: Refuting a suspect message (from: %s)", "n2")
	l.Printf("[INFO] memberlist: Suspect n3 has failed, no acks received")
	got := out.String()
	if strings.Count(got, "level=DEBUG") != 2 || !strings.Contains(got, "memberlist_level=WARN") ||
		!strings.Contains(got, `msg="Refuting a suspect message (from: n2)"`) {
		t.Fatalf("output:\n%s", got)
	}
	if len(seen) != 2 || seen[1] != "INFO|Suspect n3 has failed, no acks received" {
		t.Fatalf("onMessage saw %q", seen)
	}
}
