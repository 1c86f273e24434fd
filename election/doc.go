// Package election decides who is primary. Every decision here is a pure
// function or state machine: inputs are the gossiped view and this node's
// own facts, outputs are actions for the daemon to carry out. Nothing in
// this package does I/O, reads the clock or starts goroutines, so the
// simulator can run exactly this code.
//
// This file set currently holds the bootstrap decision: which node of a
// brand-new cluster runs initdb, and whom the others clone from. The
// quorum election with fencing tokens builds on it.
package election
