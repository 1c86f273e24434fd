package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/daemon"
	"github.com/ramd/ramd/internal/logging"
	"github.com/ramd/ramd/pg"
)

const pidFileName = "ramd.pid"
const logFileName = "ramd.log"

func cmdStart(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("start")
	path := fs.String("config", defaultConfigPath(), "configuration file")
	fg := fs.Bool("foreground", false, "run in the foreground (logs to stderr) instead of detaching")
	level := fs.String("log-level", "", "override [cluster] log_level: debug, info, warn or error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg, sources, err := configs.LoadWithSources(*path, os.Environ())
	if err != nil {
		return err
	}
	if *level != "" {
		if _, err := logging.ParseLevel(*level); err != nil {
			return usageError{fmt.Sprintf("--log-level: %v", err)}
		}
		cfg.Cluster.LogLevel = *level
	}
	if *fg {
		return runForeground(cfg, sources, *path, stderr)
	}
	return startDetached(cfg, *path, *level, stdout)
}

// runForeground runs the daemon in this process until SIGTERM or SIGINT
// (PostgreSQL fast shutdown) or SIGQUIT (immediate shutdown).
func runForeground(cfg *configs.Config, sources map[string]string, path string, stderr io.Writer) error {
	lvl, err := logging.ParseLevel(cfg.Cluster.LogLevel)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(lvl)
	out := stderr
	var logFile *logging.File
	if cfg.Logging.File != "" {
		if logFile, err = logging.OpenFile(cfg.Logging.File); err != nil {
			return err
		}
		defer logFile.Close()
		out = logFile
	}
	logger, err := logging.NewFormat(out, cfg.Logging.Format, level)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Cluster.StateDirectory, 0o755); err != nil {
		return fmt.Errorf("cluster.state_directory: %w", err)
	}
	pidPath := filepath.Join(cfg.Cluster.StateDirectory, pidFileName)
	if pid, ok := runningPID(pidPath); ok && pid != os.Getpid() {
		return fmt.Errorf("ramd is already running for this node (pid %d, %s)", pid, pidPath)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	d, err := daemon.New(daemon.Options{Config: cfg, Logger: logger, ConfigSources: sources, ConfigPath: abs, Level: level, LogFile: reopener(logFile)})
	if err != nil {
		return err
	}
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	defer os.Remove(pidPath)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP)
	go func() {
		for sig := range sigs {
			switch sig {
			case syscall.SIGHUP:
				if _, err := d.Reload(ctx); err != nil {
					logger.Error("SIGHUP: configuration reload refused", "component", "daemon", "error", err)
				}
				continue
			case syscall.SIGQUIT:
				d.SetStopMode(pg.StopImmediate)
			}
			logger.Info("signal received, shutting down", "component", "daemon", "signal", sig.String())
			cancel()
		}
	}()
	return d.Run(ctx)
}

// startDetached re-runs ramd in the foreground as a new session with its
// output in the state directory's log file, and waits until its API
// answers or it exits.
func startDetached(cfg *configs.Config, path, level string, out io.Writer) error {
	pidPath := filepath.Join(cfg.Cluster.StateDirectory, pidFileName)
	if pid, ok := runningPID(pidPath); ok {
		return fmt.Errorf("ramd is already running for this node (pid %d)", pid)
	}
	if err := os.MkdirAll(cfg.Cluster.StateDirectory, 0o755); err != nil {
		return fmt.Errorf("cluster.state_directory: %w", err)
	}
	logPath := filepath.Join(cfg.Cluster.StateDirectory, logFileName)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer logf.Close()
	start, _ := logf.Seek(0, io.SeekEnd)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	args := []string{"start", "--foreground", "--config", abs}
	if level != "" {
		args = append(args, "--log-level", level)
	}
	hc, err := localHTTPClient(cfg)
	if err != nil {
		return err
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	url := localAPIURL(cfg) + "/api/v1/health"
	deadline := time.After(60 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("ramd exited during startup: %s", lastError(logPath, start))
		case <-deadline:
			fmt.Fprintf(out, "ramd started (pid %d) but its API at %s is not answering yet; see %s\n", cmd.Process.Pid, url, logPath)
			return nil
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Fprintf(out, "ramd started (pid %d); API %s; log %s\n", cmd.Process.Pid, localAPIURL(cfg), logPath)
				return nil
			}
		}
	}
}

// lastError returns the daemon's last error message written to the log
// since offset: the final JSON line's message, or the final plain line.
func lastError(logPath string, offset int64) string {
	f, err := os.Open(logPath)
	if err != nil {
		return "see " + logPath
	}
	defer f.Close()
	_, _ = f.Seek(offset, io.SeekStart)
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" {
			last = line
		}
	}
	if last == "" {
		return "see " + logPath
	}
	return strings.TrimPrefix(last, "ramd: ")
}

func cmdStop(args []string, out io.Writer) error {
	fs := newFlagSet("stop")
	path := fs.String("config", defaultConfigPath(), "configuration file")
	force := fs.Bool("force", false, "stop PostgreSQL with an immediate shutdown instead of a fast one")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the daemon to exit")
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	return stopDaemon(cfg, *force, *timeout, out)
}

func stopDaemon(cfg *configs.Config, force bool, timeout time.Duration, out io.Writer) error {
	pidPath := filepath.Join(cfg.Cluster.StateDirectory, pidFileName)
	pid, ok := runningPID(pidPath)
	if !ok {
		return exitError{exitNotRunning, errors.New("ramd is not running for this node (no live pid in " + pidPath + ")")}
	}
	sig := syscall.SIGTERM
	if force {
		sig = syscall.SIGQUIT
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			fmt.Fprintf(out, "ramd stopped (pid %d)\n", pid)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("ramd (pid %d) did not stop within %s", pid, timeout)
}

func cmdRestart(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restart")
	path := fs.String("config", defaultConfigPath(), "configuration file")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if err := stopDaemon(cfg, false, 60*time.Second, stdout); err != nil {
		var ee exitError
		if !errors.As(err, &ee) || ee.code != exitNotRunning {
			return err
		}
	}
	return startDetached(cfg, *path, "", stdout)
}

// runningPID reads a pid file and reports whether that process is alive.
func runningPID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, false
	}
	return pid, true
}

// reopener returns f as the daemon's log reopener, or nil when logging
// goes to stderr (a nil *logging.File in the interface would not be nil).
func reopener(f *logging.File) daemon.LogReopener {
	if f == nil {
		return nil
	}
	return f
}
