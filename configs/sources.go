package configs

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Where a key's effective value came from.
const (
	SourceDefault     = "default"
	SourceFile        = "file"
	SourceEnvironment = "environment"
	SourceDerived     = "derived" // filled from other keys (FillDerived)
	SourceCluster     = "cluster" // a cluster-wide override (PATCH /cluster/config)
)

// Entry is one key of the effective configuration.
type Entry struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

// LoadWithSources is Load, plus where every key's value came from: the
// file, a RAMD_* variable, the default, or derivation from other keys.
func LoadWithSources(path string, environ []string) (*Config, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		cfg, lerr := Load(path, environ) // the same error, worded as Load words it
		return cfg, nil, lerr
	}
	cfg, err := Parse(path, data, environ)
	if err != nil {
		return nil, nil, err
	}
	md, err := toml.Decode(string(data), Default())
	if err != nil {
		return nil, nil, fmt.Errorf("configs: %w", err)
	}
	fromEnv := map[string]bool{}
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		if p, err := envKey(name); err == nil && p != nil {
			fromEnv[strings.Join(p, ".")] = true
		}
	}
	def := reflect.ValueOf(Default()).Elem()
	got := reflect.ValueOf(cfg).Elem()
	sources := map[string]string{}
	for _, section := range keysOf(configType) {
		sf, _ := fieldByKey(configType, section)
		for _, key := range keysOf(sf.Type) {
			f, _ := fieldByKey(sf.Type, key)
			full := section + "." + key
			dv := def.FieldByIndex(sf.Index).FieldByIndex(f.Index)
			gv := got.FieldByIndex(sf.Index).FieldByIndex(f.Index)
			switch {
			case fromEnv[full]:
				sources[full] = SourceEnvironment
			case md.IsDefined(section, key):
				sources[full] = SourceFile
			case !reflect.DeepEqual(dv.Interface(), gv.Interface()):
				sources[full] = SourceDerived
			default:
				sources[full] = SourceDefault
			}
		}
	}
	return cfg, sources, nil
}

// Entries lists c's keys in schema order with their values (secrets
// redacted) and sources (missing from sources: default).
func (c *Config) Entries(sources map[string]string) []Entry {
	r := reflect.ValueOf(c.Redacted()).Elem()
	var out []Entry
	for _, section := range keysOf(configType) {
		sf, _ := fieldByKey(configType, section)
		for _, key := range keysOf(sf.Type) {
			f, _ := fieldByKey(sf.Type, key)
			full := section + "." + key
			src := sources[full]
			if src == "" {
				src = SourceDefault
			}
			v := r.FieldByIndex(sf.Index).FieldByIndex(f.Index).Interface()
			if d, ok := v.(Duration); ok {
				v = d.String()
			}
			out = append(out, Entry{Key: full, Value: v, Source: src})
		}
	}
	return out
}

// DynamicKeys are the keys a cluster-wide override may set (PATCH
// /cluster/config), besides postgresql.parameters.<name>. They are read
// by the code that uses them at every use, so a change takes effect
// without a restart.
var DynamicKeys = []string{
	"failover.maximum_lag_on_failover",
	"failover.synchronous_mode",
	"failover.synchronous_node_count",
	"failover.primary_start_timeout",
}

// ErrNotDynamic is returned for a key a cluster override may not set.
var ErrNotDynamic = errors.New("configs: not a dynamic setting")

// WithOverrides returns a copy of c with the cluster-wide overrides
// applied (keys as in DynamicKeys, or postgresql.parameters.<name>;
// values as text, as in RAMD_* variables), validated as a whole. It
// refuses any other key, naming it and why.
func (c *Config) WithOverrides(overrides map[string]string) (*Config, error) {
	out := c.Clone()
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		v := overrides[k]
		if name, ok := strings.CutPrefix(k, "postgresql.parameters."); ok {
			if err := CheckParameter(name, v); err != nil {
				errs = append(errs, err)
				continue
			}
			if out.PostgreSQL.Parameters == nil {
				out.PostgreSQL.Parameters = Parameters{}
			}
			out.PostgreSQL.Parameters[name] = v
			continue
		}
		if !isDynamic(k) {
			why := "only " + strings.Join(DynamicKeys, ", ") + " and postgresql.parameters.<name> can change at run time"
			if k == "failover.lease_ttl" || k == "failover.lease_renew_interval" || k == "failover.max_clock_drift_ppm" {
				why = "the lease arithmetic must agree on every node at every moment: change it in every node's file and restart the nodes one by one"
			}
			errs = append(errs, fmt.Errorf("%w: %s: %s", ErrNotDynamic, k, why))
			continue
		}
		if err := setPath(reflect.ValueOf(out).Elem(), strings.Split(k, "."), v); err != nil {
			errs = append(errs, fmt.Errorf("configs: %s: %w", k, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

func isDynamic(k string) bool {
	for _, d := range DynamicKeys {
		if d == k {
			return true
		}
	}
	return false
}

// ChangedKeys lists, in schema order, the keys whose values differ
// between a and b. Secrets are compared as they are (not redacted), so a
// changed password counts.
func ChangedKeys(a, b *Config) []string {
	av, bv := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var out []string
	for _, section := range keysOf(configType) {
		sf, _ := fieldByKey(configType, section)
		for _, key := range keysOf(sf.Type) {
			f, _ := fieldByKey(sf.Type, key)
			x := av.FieldByIndex(sf.Index).FieldByIndex(f.Index).Interface()
			y := bv.FieldByIndex(sf.Index).FieldByIndex(f.Index).Interface()
			if !reflect.DeepEqual(x, y) {
				out = append(out, section+"."+key)
			}
		}
	}
	return out
}
