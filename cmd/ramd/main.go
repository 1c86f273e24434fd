// Command ramd is the PostgreSQL high-availability daemon. The same binary
// runs beside PostgreSQL on every node; its subcommands start and stop the
// daemon, ask a running one about the cluster, validate configuration and
// run a local demo cluster.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	simcmd "github.com/ramd/ramd/sim/cmd"
	simmesh "github.com/ramd/ramd/sim/mesh"
)

// Exit codes (documented in the README).
const (
	exitOK         = 0
	exitFailure    = 1  // an error, or `health`: degraded
	exitCritical   = 2  // `health`: failed
	exitNotRunning = 3  // the daemon is not running or not reachable
	exitUsage      = 64 // bad command line (sysexits EX_USAGE)
)

// usageError marks command-line mistakes so main exits with exitUsage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError carries a specific exit code with its message.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

const usage = `ramd - PostgreSQL high availability without an external coordinator

Usage:
  ramd start    [--config PATH] [--foreground] [--log-level LEVEL]
  ramd stop     [--config PATH] [--force] [--timeout DURATION]
  ramd restart  [--config PATH]
  ramd status   [--config PATH | --url URL] [--json]
  ramd health   [--config PATH | --url URL] [--json]
  ramd info     [--config PATH | --url URL] [--json]
  ramd config validate [--config PATH]
  ramd keygen   print a new gossip encryption key ([mesh] encrypt_key, ramctl keys install)
  ramd demo     [--nodes N] [--dir DIR] [--pg-port P] [--api-port P] ...
  ramd sim run  [--nodes N] [--seeds N | --seed S --trace] [--scenario NAME] [--sync quorum] [--election pglock]
  ramd sim mesh [--nodes N] [--loss P] [--seed S] [--pause K] [--json]
  ramd version

The default config path is $RAMD_CONFIG, else /etc/ramd/ramd.toml.
Run 'ramd COMMAND --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "start":
		err = cmdStart(rest, stdout, stderr)
	case "stop":
		err = cmdStop(rest, stdout)
	case "restart":
		err = cmdRestart(rest, stdout, stderr)
	case "status":
		err = cmdStatus(rest, stdout)
	case "health":
		err = cmdHealth(rest, stdout)
	case "info":
		err = cmdInfo(rest, stdout)
	case "config":
		err = cmdConfig(rest, stdout)
	case "demo":
		err = cmdDemo(rest, stdout, stderr)
	case "keygen":
		err = cmdKeygen(rest, stdout)
	case "sim":
		// The simulator has its own flags and exit codes (0 clean,
		// 1 invariant violated, 2 usage).
		if len(rest) > 0 && rest[0] == "run" {
			rest = rest[1:]
		} else if len(rest) > 0 && rest[0] == "mesh" {
			return simmesh.Command(rest[1:], stdout, stderr)
		}
		return simcmd.Run(rest, stdout, stderr)
	case "version", "--version", "-v":
		err = cmdVersion(stdout)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		err = usageError{fmt.Sprintf("unknown command %q (run 'ramd help')", cmd)}
	}
	return report(err, stderr)
}

func report(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "ramd: %s\n", ue.msg)
		return exitUsage
	}
	code := exitFailure
	var ee exitError
	if errors.As(err, &ee) {
		if ee.code == exitOK {
			return exitOK // --help: already printed
		}
		code = ee.code
	}
	fmt.Fprintf(stderr, "ramd: %v\n", err)
	return code
}
