// Package e2e holds end-to-end tests: real ramd processes managing real
// PostgreSQL servers on loopback, driven the way a user drives them. The
// tests build the ramd binary once (TestMain) and need the PostgreSQL
// server binaries; with CI set they fail rather than skip when those are
// missing.
package e2e
