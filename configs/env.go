package configs

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

const envPrefix = "RAMD_"

// envShortcut maps the short variable names to their keys. They predate the
// general RAMD_<SECTION>_<KEY> form (RAMD_CLUSTER_NAME would otherwise mean
// the non-existent cluster.name), so they are checked first.
func envShortcut(name string) []string {
	switch name {
	case "RAMD_NODE_ID":
		return []string{"cluster", "node_id"}
	case "RAMD_CLUSTER_NAME":
		return []string{"cluster", "cluster_name"}
	case "RAMD_API_PORT":
		return []string{"api", "port"}
	case "RAMD_LOG_LEVEL":
		return []string{"cluster", "log_level"}
	}
	return nil
}

// applyEnv applies the RAMD_* overrides of environ to c. See the package
// doc for the forms accepted. All problems are reported together.
func applyEnv(c *Config, environ []string) error {
	// The last assignment of a variable wins, as when a shell exports it
	// twice. Variables are then applied in name order, so the result does
	// not depend on the order of environ.
	values := make(map[string]string)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(name, envPrefix) {
			values[name] = value
		}
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)

	var errs []error
	setBy := make(map[string]string) // key -> variable that set it
	for _, name := range names {
		path, err := envKey(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if path == nil {
			continue // not ours (RAMD_TOKEN is ramctl's)
		}
		key := strings.Join(path, ".")
		if prev, dup := setBy[key]; dup && values[prev] != values[name] {
			errs = append(errs, fmt.Errorf("configs: %s and %s both set %s, to different values", prev, name, key))
			continue
		}
		setBy[key] = name
		if err := setPath(reflect.ValueOf(c).Elem(), path, values[name]); err != nil {
			errs = append(errs, fmt.Errorf("configs: %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// envKey maps a RAMD_ variable name to the key it sets. It returns nil, nil
// for a variable that is not a configuration override, and an error for one
// that names a known section but no known key.
func envKey(name string) ([]string, error) {
	if path := envShortcut(name); path != nil {
		return path, nil
	}
	rest := strings.TrimPrefix(name, envPrefix)
	for _, section := range keysOf(configType) {
		upper := strings.ToUpper(section)
		if rest == upper || rest == upper+"_" {
			return nil, fmt.Errorf("configs: %s: names section [%s] but no key (write %s<KEY>)", name, section, envPrefix+upper+"_")
		}
		key, ok := strings.CutPrefix(rest, upper+"_")
		if !ok {
			continue
		}
		key = strings.ToLower(key)
		f, _ := fieldByKey(configType, section)
		if _, ok := fieldByKey(f.Type, key); !ok {
			hint := ""
			if s := closest(key, keysOf(f.Type)); s != "" {
				hint = fmt.Sprintf(" (did you mean %s%s_%s?)", envPrefix, upper, strings.ToUpper(s))
			}
			return nil, fmt.Errorf("configs: %s: unknown key %q%s", name, section+"."+key, hint)
		}
		return []string{section, key}, nil
	}
	return nil, nil
}

// setPath sets the field of struct v at the TOML key path from text.
func setPath(v reflect.Value, path []string, text string) error {
	for _, seg := range path {
		f, ok := fieldByKey(v.Type(), seg)
		if !ok {
			return fmt.Errorf("unknown key %q", seg) // unreachable: envKey checked
		}
		v = v.FieldByIndex(f.Index)
	}
	return setText(v, text)
}

// setText stores text in v according to v's type. It covers every field type
// the schema uses; a new type gets an explicit error rather than a silent
// skip.
func setText(v reflect.Value, text string) error {
	switch p := v.Addr().Interface().(type) {
	case *Parameters:
		pairs, err := splitPairs(text)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			if err := p.Set(kv[0], kv[1]); err != nil {
				return errors.New(strings.TrimPrefix(err.Error(), "configs: "))
			}
		}
		return nil
	case encoding.TextUnmarshaler:
		if err := p.UnmarshalText([]byte(text)); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "configs: "))
		}
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer", text)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, ok := parseBool(text)
		if !ok {
			return fmt.Errorf("%q is not a boolean (true/false, 1/0, on/off, yes/no)", text)
		}
		v.SetBool(b)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", v.Type())
		}
		items := splitList(text)
		list := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			list.Index(i).SetString(item)
		}
		v.Set(list)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported table type %s", v.Type())
		}
		pairs, err := splitPairs(text)
		if err != nil {
			return err
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for _, kv := range pairs {
			v.SetMapIndex(reflect.ValueOf(kv[0]).Convert(v.Type().Key()), reflect.ValueOf(kv[1]).Convert(v.Type().Elem()))
		}
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "on", "yes", "t", "y":
		return true, true
	case "false", "0", "off", "no", "f", "n":
		return false, true
	}
	return false, false
}

// splitList splits on commas not escaped by a backslash, trims spaces
// around items and drops empty items, so "" is the empty list and "a, b,"
// is [a b].
func splitList(s string) []string {
	items := []string{}
	for _, item := range splitEscaped(s, ',') {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, unescape(item))
		}
	}
	return items
}

// splitPairs parses "k=v,k2=v2". A value may be empty ("k="), a key may not.
func splitPairs(s string) ([][2]string, error) {
	var pairs [][2]string
	for _, item := range splitEscaped(s, ',') {
		if strings.TrimSpace(item) == "" {
			continue
		}
		kv := splitEscaped(item, '=')
		if len(kv) < 2 {
			return nil, fmt.Errorf("%q is not key=value", unescape(strings.TrimSpace(item)))
		}
		// The first unescaped '=' separates; later ones belong to the value.
		k := unescape(strings.TrimSpace(kv[0]))
		rest := strings.Join(kv[1:], "=")
		if k == "" {
			return nil, fmt.Errorf("%q has an empty key", strings.TrimSpace(item))
		}
		pairs = append(pairs, [2]string{k, unescape(strings.TrimSpace(rest))})
	}
	return pairs, nil
}

// splitEscaped splits s on sep where sep is not preceded by an unescaped
// backslash. Escapes are kept in the parts, for unescape to remove once the
// final level of splitting is done.
func splitEscaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // skip the escaped byte
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unescape removes one level of backslash escapes.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
