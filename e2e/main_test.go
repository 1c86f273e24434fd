package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ramd/ramd/pg"
)

// ramdBin and ramctlBin are the binaries under test, built by TestMain.
var ramdBin, ramctlBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if _, err := pg.FindBinDir(os.Getenv("RAMD_TEST_PG_BIN")); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "e2e: PostgreSQL is required in CI: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: skipping end-to-end tests: %v\n", err)
		return 0
	}
	dir, err := os.MkdirTemp("", "ramd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ramdBin, ramctlBin = filepath.Join(dir, "ramd"), filepath.Join(dir, "ramctl")
	for bin, pkg := range map[string]string{ramdBin: "../cmd/ramd", ramctlBin: "../cmd/ramctl"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building %s: %v\n", pkg, err)
			return 1
		}
	}
	return m.Run()
}
