package mesh

import "sync"

// mlSuspectMsg is memberlist's suspect message type (net.go).
const mlSuspectMsg = 3

// suspectLog counts the suspicions the network carried: distinct suspect
// messages (a suspecting node, a subject, an incarnation) and distinct
// subjects. memberlist has no callback for a suspicion, only for the
// verdict; a suspicion of a healthy node that it refutes in time leaves
// no other trace, yet each one costs a refutation gossiped to every node,
// and a node that misses the refutation holds a stale incarnation (its
// later suspicion of that node is one nobody else, the subject included,
// acts on, and ends in a verdict by that node alone). The run reports
// the count per phase. It is fed by the duplicate-alive filter, which
// already splits every delivered packet into its messages, so it counts
// only when the filter is on.
type suspectLog struct {
	mu       sync.Mutex
	msgs     map[msgKey]struct{}
	subjects map[string]struct{}
}

func newSuspectLog() *suspectLog {
	return &suspectLog{msgs: make(map[msgKey]struct{}), subjects: make(map[string]struct{})}
}

// note records suspect message part (type byte included).
func (l *suspectLog) note(part []byte) {
	k := keyOf(part)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, seen := l.msgs[k]; seen {
		return
	}
	l.msgs[k] = struct{}{}
	if subj := aliveSubject(part[1:]); subj != "" {
		l.subjects[subj] = struct{}{}
	}
}

// take returns the counts since the last take and starts over.
func (l *suspectLog) take() (msgs, subjects int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msgs, subjects = len(l.msgs), len(l.subjects)
	l.msgs = make(map[msgKey]struct{})
	l.subjects = make(map[string]struct{})
	return msgs, subjects
}
