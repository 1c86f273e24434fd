package configs

import (
	"fmt"
	"io"

	"github.com/BurntSushi/toml"
)

// Encode writes c as TOML that Parse reads back to an identical Config
// (for a Config Parse produced, or any Config that passes Validate after
// FillDerived). Every key is written, derived ones included, so the output
// shows exactly what the node runs with; secrets are written as they are,
// so use Redacted first to display a configuration.
func (c *Config) Encode(w io.Writer) error {
	if err := toml.NewEncoder(w).Encode(c); err != nil {
		return fmt.Errorf("configs: encoding: %w", err)
	}
	return nil
}
