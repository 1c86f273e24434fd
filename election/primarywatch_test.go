package election

import "testing"

// primaryWatch keeps only positions of the primary's own WAL under the
// current token: gossip from before its promotion, or from an older
// token, must not make replicas look behind.
func TestPrimaryWatch(t *testing.T) {
	st := ClusterState{Bootstrapped: true, Primary: 1, Token: 4}
	at := func(token, lsn uint64) Position {
		return Position{Timeline: 3, LSN: lsn, Token: token, TokenKnown: true}
	}
	var w primaryWatch
	if w.last(4) != nil {
		t.Fatal("fresh watch has a position")
	}
	w.observe(st, 4, at(3, 9000)) // stale gossip: WAL written under token 3
	w.observe(st, 3, at(3, 9000)) // an older token
	w.observe(st, 4, Position{Timeline: 3, LSN: 9000})
	w.observe(ClusterState{Token: 4}, 4, at(4, 9000)) // not bootstrapped
	if p := w.last(4); p != nil {
		t.Fatalf("recorded %v from a stale or unknown writer token", *p)
	}
	w.observe(st, 4, at(4, 500))
	w.observe(st, 4, at(4, 700))
	w.observe(st, 4, at(4, 600)) // gossip arrives out of order: keep the highest
	if p := w.last(4); p == nil || p.LSN != 700 {
		t.Fatalf("last = %v, want LSN 700", p)
	}
	if w.last(5) != nil {
		t.Fatal("a position for another token")
	}
	st.Token = 5
	w.observe(st, 5, at(5, 100)) // a new primary: start over
	if p := w.last(5); p == nil || p.LSN != 100 {
		t.Fatalf("after a new token: %v, want LSN 100", p)
	}
	if w.last(4) != nil {
		t.Fatal("the old token's position survived a new one")
	}
}
