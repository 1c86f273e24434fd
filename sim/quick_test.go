package sim

import (
	"os"
	"testing"
	"time"
)

func TestQuick(t *testing.T) {
	st := time.Now()
	r := Run(Config{Nodes: 5, Seed: 1})
	t.Logf("wall %v msgs %d", time.Since(st), r.Messages)
	PrintTrace(os.Stdout, r)
}
