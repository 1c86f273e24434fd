package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/ramd/ramd/internal/version"
)

func cmdVersion(out io.Writer) error {
	fmt.Fprintf(out, "ramd %s (%s, %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
