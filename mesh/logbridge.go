package mesh

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
)

// logBridge is the io.Writer behind memberlist's *log.Logger. memberlist
// writes one "[LEVEL] memberlist: message" line per call; the bridge
// re-emits each line through slog at debug level, keeping the original
// level as an attribute. memberlist is chatty at INFO and WARN in normal
// operation (every failed probe of a stopped peer, every refutation), and
// the events that matter to an operator are logged by the mesh itself.
//
// onMessage, if set, sees every parsed line: memberlist reports some facts
// only in its log (see suspectedNode).
type logBridge struct {
	log       *slog.Logger
	onMessage func(level, msg string)
}

func (b *logBridge) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(p, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		level, msg := parseLogLine(string(line))
		if b.onMessage != nil {
			b.onMessage(level, msg)
		}
		b.log.LogAttrs(context.Background(), slog.LevelDebug, msg,
			slog.String("source", "memberlist"), slog.String("memberlist_level", level))
	}
	return len(p), nil
}

// parseLogLine splits "[WARN] memberlist: text" into "WARN" and "text".
// A line without a level prefix gets level "" and is returned trimmed.
func parseLogLine(line string) (level, msg string) {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 && end <= 8 {
			level, line = line[1:end], strings.TrimSpace(line[end+1:])
		}
	}
	return level, strings.TrimPrefix(line, "memberlist: ")
}

// suspectedNode recognises the line memberlist v0.7.0 logs when this
// node's probe of a member failed and it is about to mark it suspect
// ("Suspect <name> has failed, no acks received", state.go probeNode).
// It is the only signal of suspicion memberlist gives: Node.State is never
// updated (hashicorp/memberlist#266) and EventDelegate has no suspect
// event. The package tests fail if an upgrade changes the wording.
func suspectedNode(level, msg string) (string, bool) {
	if level != "INFO" {
		return "", false
	}
	rest, ok := strings.CutPrefix(msg, "Suspect ")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, " has failed, no acks received")
	if !ok || name == "" {
		return "", false
	}
	return name, true
}
