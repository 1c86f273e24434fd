package logging

import (
	"fmt"
	"os"
	"sync"
)

// File is a log file that can be reopened by path: logrotate renames the
// file and sends SIGHUP, and the daemon reopens, so new lines go to a new
// file at the configured path while the renamed one is left complete.
// (Without a reopen the daemon would keep writing into the renamed file
// forever, or, with copytruncate, lose lines written during the copy.)
//
// Writes and Reopen are serialised, so a line is never split between the
// two files.
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenFile opens path for appending, creating it mode 0640 (group-readable
// for a log-shipping agent; the lines carry no secrets).
func OpenFile(path string) (*File, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("logging: logging.file: %w", err)
	}
	return f, nil
}

// Write appends p (one log line from slog) to the current file.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the path again and switches to it, closing the previous
// file. If the path cannot be opened (a full or read-only disk), logging
// continues into the previous file and the error is returned.
func (l *File) Reopen() error {
	f, err := openAppend(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

// Path is the configured path.
func (l *File) Path() string { return l.path }

// Close closes the file.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
