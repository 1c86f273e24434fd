package main

import (
	"fmt"
	"io"
)

func cmdConfig(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "validate" {
		return usageError{"usage: ramd config validate [--config PATH]"}
	}
	fs := newFlagSet("config validate")
	path := fs.String("config", defaultConfigPath(), "configuration file")
	if err := parseFlags(fs, args[1:], out); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: configuration is valid (node %d %q, cluster %q)\n", *path, cfg.Cluster.NodeID, cfg.Cluster.NodeName, cfg.Cluster.ClusterName)
	return nil
}
