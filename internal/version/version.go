// Package version holds the build's version, set by the Makefile's ldflags.
package version

// Version is the ramd release ("dev" for untagged builds).
var Version = "dev"
