package configs

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse: it must never panic, and a
// document it accepts must survive Encode and Parse unchanged.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("examples/*.toml")
	seeds = append(seeds, "ramd.toml")
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{minimal, richConfig, "", "[mesh\n", "[cluster]\nnode_id = \"x\"",
		minimal + "[postgresql.parameters]\nport = 1\n", minimal + "[mesh]\nprobe_interval = 5\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("/etc/ramd/ramd.toml", data, nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "configs: ") {
				t.Errorf("error without prefix: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := c.Encode(&buf); err != nil {
			t.Fatalf("Encode: %v", err)
		}
		back, err := Parse("/etc/ramd/ramd.toml", buf.Bytes(), nil)
		if err != nil {
			t.Fatalf("Parse(Encode()): %v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("round trip changed the config\n%s", buf.String())
		}
	})
}

// FuzzEnv feeds arbitrary environment entries to Parse: it must never
// panic, and every error must carry the package prefix.
func FuzzEnv(f *testing.F) {
	f.Add("RAMD_API_PORT=1\nRAMD_CLUSTER_TAGS=a=b,c\\,d=e")
	f.Add("RAMD_POSTGRESQL_PARAMETERS=work_mem=1MB,port=2\nRAMD_TOKEN=x")
	f.Add("RAMD_MESH_PROBE_INTERVAL=1s\nRAMD_CLUSTER_JOIN=a:1,\\")
	f.Add("RAMD_MESH=\nRAMD_NODE_ID=0")
	f.Fuzz(func(t *testing.T, env string) {
		_, err := Parse("ramd.toml", []byte(minimal), strings.Split(env, "\n"))
		if err != nil && !strings.HasPrefix(err.Error(), "configs: ") {
			t.Errorf("error without prefix: %v", err)
		}
	})
}
