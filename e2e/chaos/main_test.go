package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ramd/ramd/pg"
)

// ramdBin is the daemon under test, built by TestMain.
var ramdBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ramd-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The binary is built only when PostgreSQL is there to run it; the
	// real-cluster test checks (and fails in CI without it).
	if _, err := pg.FindBinDir(os.Getenv("RAMD_TEST_PG_BIN")); err == nil {
		ramdBin = filepath.Join(dir, "ramd")
		build := exec.Command("go", "build", "-o", ramdBin, "../../cmd/ramd")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: building ramd: %v\n", err)
			return 1
		}
	}
	return m.Run()
}
