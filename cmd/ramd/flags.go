package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"strings"

	"github.com/ramd/ramd/configs"
)

// newFlagSet returns a flag set whose errors become usage errors instead
// of exiting the process.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ramd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args; --help prints the flags and returns errHelp.
func parseFlags(fs *flag.FlagSet, args []string, out io.Writer) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(out)
		fs.PrintDefaults()
		return exitError{code: exitOK, err: errors.New("")}
	}
	if err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{"unexpected argument " + strings.Join(fs.Args(), " ")}
	}
	return nil
}

func defaultConfigPath() string {
	if p := os.Getenv("RAMD_CONFIG"); p != "" {
		return p
	}
	return "/etc/ramd/ramd.toml"
}

func loadConfig(path string) (*configs.Config, error) {
	return configs.Load(path, os.Environ())
}
