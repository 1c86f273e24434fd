// Command ramctl is the operator's CLI for a ramd cluster, in the habits of
// patronictl and etcdctl: it talks to any node's REST API.
//
// This first version reads the cluster's state (list, status, health);
// switchover, failover, maintenance and the rest follow with the
// operations work.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
