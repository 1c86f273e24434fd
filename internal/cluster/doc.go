// Package cluster launches a local ramd cluster on loopback (or, with
// Options.Netns, each node in its own network namespace so that tests can
// partition it): it writes one TOML file per node, starts real
// `ramd start --foreground` processes (each managing a real PostgreSQL),
// waits for the cluster to form, and stops everything it started. `ramd demo`, the end-to-end tests and the
// benchmarks share it, so what the tests check is what a user runs.
package cluster
