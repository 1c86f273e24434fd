package gate_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ramd/ramd/pg/gate"
)

// helperEnv carries the connection string to the gate helper process.
const helperEnv = "RAMD_GATE_HELPER_CONN"

// TestHelperGateProcess is not a test: run by TestGateProcess as a child
// process, it serves a gate that is always allowed, until killed.
func TestHelperGateProcess(t *testing.T) {
	conn := os.Getenv(helperEnv)
	if conn == "" {
		t.Skip("helper process for TestGateProcess")
	}
	g, err := gate.New(gate.Config{ConnString: conn, Allowed: func() bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	_ = g.Run(context.Background())
}

// TestGateProcess freezes (SIGSTOP) and kills (SIGKILL) a real process
// serving the gate: the fence must hold with no help from it.
func TestGateProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	p := startPrimary(t, ctx)
	cmd := startGateProcess(t, p)
	p.requireGate(t, ctx, true)
	p.waitSync(t, ctx)
	w := p.newWriter(t, ctx)

	check := func(what string, wantHang bool) {
		t.Helper()
		_, took, gaveUp, err := w.insert(ctx, hangFor)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if wantHang && (!gaveUp || took < hangFor) {
			t.Fatalf("%s: commit acknowledged after %s; want it to wait", what, took)
		}
		if !wantHang && (gaveUp || took > prompt) {
			t.Fatalf("%s: commit took %s (gave up waiting %t); want it prompt", what, took, gaveUp)
		}
		t.Logf("%s: commit took %s, gave up waiting %t", what, took, gaveUp)
	}
	check("gate process running", false)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	check("gate process stopped (SIGSTOP)", true)
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	check("gate process resumed (SIGCONT)", false)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	check("gate process killed (SIGKILL)", true)
}

// startGateProcess runs an always-allowed gate in a child process (this
// test binary, as TestHelperGateProcess), as the daemon would: apart from
// the clients. It is killed at cleanup at the latest.
func startGateProcess(t *testing.T, p *primary) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperGateProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+p.socketConnString())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}
