// Command ramctl is the operator's CLI for a ramd cluster, in the habits of
// patronictl and etcdctl: it talks to any node's REST API.
//
// It reads the cluster's state (list, status, health, history) and runs
// switchovers and maintenance mode; manual failover, config, node,
// replication and backup commands are not built yet.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
