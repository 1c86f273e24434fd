package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstall runs `make install DESTDIR=<tmp>` (binaries built into a
// temporary BIN, not the source tree) and checks the installed tree: the
// binaries run, the unit names them and the config, and a second install
// keeps an edited ramd.toml. With PREFIX=/usr everything follows. With
// systemd-analyze installed the unit is verified too.
func TestInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "root")
	install := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("make", append([]string{"-C", "..", "-s", "install", "DESTDIR=" + dest, "BIN=" + filepath.Join(tmp, "bin")}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	install()

	for path, mode := range map[string]os.FileMode{
		"usr/local/bin/ramd":                        0o755,
		"usr/local/bin/ramctl":                      0o755,
		"usr/local/lib/systemd/system/ramd.service": 0o644,
		"etc/ramd/ramd.toml":                        0o644,
	} {
		st, err := os.Stat(filepath.Join(dest, path))
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
		}
	}
	if out, err := exec.Command(filepath.Join(dest, "usr/local/bin/ramd"), "version").CombinedOutput(); err != nil {
		t.Errorf("installed ramd version: %v\n%s", err, out)
	}
	unit := read(t, filepath.Join(dest, "usr/local/lib/systemd/system/ramd.service"))
	for _, want := range []string{
		"\nType=simple\n", "\nRestart=on-failure\n", "\nUser=postgres\n", "\nKillMode=process\n",
		"\nExecStart=/usr/local/bin/ramd start --foreground --config /etc/ramd/ramd.toml\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	if want, got := read(t, "../configs/ramd.toml"), read(t, filepath.Join(dest, "etc/ramd/ramd.toml")); got != want {
		t.Error("installed ramd.toml differs from configs/ramd.toml")
	}

	// An edited configuration survives a reinstall.
	cfg := filepath.Join(dest, "etc/ramd/ramd.toml")
	if err := os.WriteFile(cfg, []byte("# edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := install(); !strings.Contains(out, "keeping existing") {
		t.Errorf("reinstall did not say it kept the config: %q", out)
	}
	if got := read(t, cfg); got != "# edited\n" {
		t.Errorf("reinstall overwrote the edited ramd.toml: %q", got)
	}

	// PREFIX=/usr: binaries and unit move, ExecStart follows.
	install("PREFIX=/usr")
	unit = read(t, filepath.Join(dest, "usr/lib/systemd/system/ramd.service"))
	if !strings.Contains(unit, "\nExecStart=/usr/bin/ramd start --foreground --config /etc/ramd/ramd.toml\n") {
		t.Errorf("PREFIX=/usr unit's ExecStart:\n%s", unit)
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/bin/ramctl")); err != nil {
		t.Error(err)
	}

	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify wants ExecStart to exist: point it at the staged binary.
		u := strings.Replace(unit, "ExecStart=/usr/bin/ramd", "ExecStart="+filepath.Join(dest, "usr/bin/ramd"), 1)
		p := filepath.Join(tmp, "ramd.service")
		if err := os.WriteFile(p, []byte(u), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(sa, "verify", p).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	} else {
		t.Log("systemd-analyze not installed: unit not verified")
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
