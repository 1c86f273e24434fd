package pg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// installHint tells an operator how to get the binaries; Debian is the
// platform ramd is packaged for.
const installHint = "install the postgresql-15 package (apt-get install postgresql-15) or set [postgresql] bin_directory"

// debianBinGlob is where Debian's postgresql-NN packages put the server
// binaries (they are not on PATH).
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// requiredBinaries are the programs this package runs. pg_rewind is not
// among them: the failover work checks for it when it needs it.
var requiredBinaries = []string{"initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_controldata"}

// FindBinDir returns the directory holding initdb and friends: configured
// when set, else `pg_config --bindir`, else the newest
// /usr/lib/postgresql/*/bin. The error says what to install.
func FindBinDir(configured string) (string, error) {
	if configured != "" {
		if !hasInitdb(configured) {
			return "", fmt.Errorf("pg: initdb not found in %s: %s", configured, installHint)
		}
		return configured, nil
	}
	if dir, ok := pgConfigBinDir(); ok && hasInitdb(dir) {
		return dir, nil
	}
	if dir, ok := newestDebianBinDir(); ok {
		return dir, nil
	}
	return "", fmt.Errorf("pg: initdb not found (pg_config --bindir, %s): %s", debianBinGlob, installHint)
}

func hasInitdb(dir string) bool {
	return isExecutable(filepath.Join(dir, "initdb"))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// pgConfigBinDir asks pg_config. On Debian /usr/bin/pg_config may come from
// libpq-dev of another major version than the installed server, which is
// why the caller still checks for initdb.
func pgConfigBinDir() (string, bool) {
	path, err := exec.LookPath("pg_config")
	if err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--bindir").Output()
	if err != nil {
		return "", false
	}
	dir := strings.TrimSpace(string(out))
	return dir, dir != ""
}

// newestDebianBinDir picks the highest major version that has initdb.
func newestDebianBinDir() (string, bool) {
	dirs, _ := filepath.Glob(debianBinGlob)
	sort.Slice(dirs, func(i, j int) bool { return dirVersion(dirs[i]) > dirVersion(dirs[j]) })
	for _, d := range dirs {
		if hasInitdb(d) {
			return d, true
		}
	}
	return "", false
}

// dirVersion is the numeric major version in /usr/lib/postgresql/<v>/bin
// (-1 when it is not a number), so that 15 sorts above 9.6.
func dirVersion(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

// checkBinaries makes sure every program we run is present, so a broken
// install fails in New rather than halfway through a bootstrap.
func checkBinaries(dir string) error {
	var missing []string
	for _, b := range requiredBinaries {
		if !isExecutable(filepath.Join(dir, b)) {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("pg: %s missing in %s: %s", strings.Join(missing, ", "), dir, installHint)
	}
	return nil
}
