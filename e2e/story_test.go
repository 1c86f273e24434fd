package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// logLine is one parsed JSON log line.
type logLine map[string]any

func (l logLine) str(k string) string {
	v, ok := l[k]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// readLog parses a node's JSON-lines log from byte offset from (lines
// that are not JSON, e.g. a Go panic, are skipped).
func readLog(t *testing.T, path string, from int64) []logLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(from, 0); err != nil {
		t.Fatal(err)
	}
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// step matches a log line: component and message, and fields whose
// values must equal (or, with a leading "~", contain) the given text.
type step struct {
	component, message string
	fields             map[string]string
}

func (s step) String() string { return fmt.Sprintf("%s %q %v", s.component, s.message, s.fields) }

func (s step) match(l logLine) bool {
	if l.str("component") != s.component || l.str("message") != s.message {
		return false
	}
	for k, want := range s.fields {
		got := l.str(k)
		if sub, ok := strings.CutPrefix(want, "~"); ok {
			if !strings.Contains(got, sub) {
				return false
			}
		} else if got != want {
			return false
		}
	}
	return true
}

// checkStory requires steps to appear in lines in this order (other lines
// may come between) and every matched line to be an info line naming
// node and carrying the state-change keys token and reason.
func checkStory(t *testing.T, who string, lines []logLine, node string, steps []step) {
	t.Helper()
	i := 0
	for _, l := range lines {
		if i == len(steps) {
			break
		}
		if !steps[i].match(l) {
			continue
		}
		if l.str("level") != "info" || l.str("node") != node {
			t.Errorf("%s: %v: want an info line with node=%s: %v", who, steps[i], node, l)
		}
		i++
	}
	if i < len(steps) {
		var story []string
		for _, l := range lines {
			if c := l.str("component"); (c == "election" || c == "daemon" || c == "pg") && l.str("level") != "debug" {
				story = append(story, fmt.Sprintf("%s %s %q token=%s reason=%q", l.str("timestamp"), c, l.str("message"), l.str("token"), l.str("reason")))
			}
		}
		t.Errorf("%s: the log lacks, in order, %v (matched up to step %d)\nits story:\n%s", who, steps[i:], i, strings.Join(story, "\n"))
	}
}

// checkStateKeys reports the state-change lines (by message) that lack
// the node, token or reason keys, or have an empty node or reason.
func checkStateKeys(t *testing.T, who string, lines []logLine, messages ...string) {
	t.Helper()
	for _, l := range lines {
		for _, m := range messages {
			if l.str("message") != m {
				continue
			}
			for _, k := range []string{"node", "token", "reason"} {
				if _, ok := l[k]; !ok {
					t.Errorf("%s: %q line without %s: %v", who, m, k, l)
				}
			}
			if l.str("reason") == "" || l.str("node") == "" {
				t.Errorf("%s: %q line with an empty reason or node: %v", who, m, l)
			}
		}
	}
}
