package configs

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// The schema is the Config struct itself: its toml tags are the only list of
// keys. Unknown-key detection, type errors and environment overrides all walk
// it by reflection so that a field added to types.go is covered everywhere
// without touching this package's logic.

var (
	configType     = reflect.TypeFor[Config]()
	durationType   = reflect.TypeFor[Duration]()
	parametersType = reflect.TypeFor[Parameters]()
)

// tomlKey returns the TOML key of a struct field ("" when it has none).
func tomlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// fieldByKey returns the index of the field of struct type t whose TOML key
// is exactly key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tomlKey(f) == key && key != "" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fieldByKeyFold is fieldByKey as the TOML decoder does it: an exact match
// first, then a case-insensitive one.
func fieldByKeyFold(t reflect.Type, key string) (reflect.StructField, bool) {
	if f, ok := fieldByKey(t, key); ok {
		return f, true
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if k := tomlKey(f); k != "" && strings.EqualFold(k, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// keysOf lists the TOML keys of struct type t, in declaration order.
func keysOf(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if k := tomlKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// isFreeForm reports whether a field's sub-keys are the user's (tags,
// parameters) rather than part of the schema.
func isFreeForm(t reflect.Type) bool {
	return t.Kind() == reflect.Map
}

// schemaCheck classifies a full TOML key against the schema. It returns
// ok=true when every segment matches a toml tag exactly (or lies inside a
// free-form table); otherwise a hint for the error message, which may be
// empty.
func schemaCheck(key []string) (ok bool, hint string) {
	t := configType
	for i, seg := range key {
		if t.Kind() != reflect.Struct {
			// A scalar has no sub-keys; the decoder already complained
			// about the type, so this is only reached for odd input.
			return false, ""
		}
		f, found := fieldByKey(t, seg)
		if !found {
			prefix := strings.Join(key[:i], ".")
			if prefix != "" {
				prefix += "."
			}
			if g, fold := fieldByKeyFold(t, seg); fold {
				return false, fmt.Sprintf("keys are case-sensitive; did you mean %q?", prefix+tomlKey(g))
			}
			if s := closest(seg, keysOf(t)); s != "" {
				return false, fmt.Sprintf("did you mean %q?", prefix+s)
			}
			return false, ""
		}
		t = f.Type
		if isFreeForm(t) {
			return true, ""
		}
	}
	return true, ""
}

// closest returns the candidate within edit distance 2 of s (the usual
// typo: a doubled, missing or swapped letter), or "".
func closest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Keys are short; do not spend time on pathological input.
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// typeProblems walks a raw decoded TOML value against schema type t and
// describes every value whose TOML type cannot be stored in its field. It
// mirrors what the TOML decoder accepts; Duration and Parameters check their
// own values (with line numbers) and are skipped. Keys are visited in sorted
// order so that errors come out in a stable order.
func typeProblems(path string, raw any, t reflect.Type) []string {
	at := func(want string) []string {
		return []string{fmt.Sprintf("%s: expected %s, got %s", path, want, describeTOML(raw))}
	}
	if t == durationType || t == parametersType {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return at("a table")
		}
		var out []string
		for _, k := range sortedKeys(m) {
			f, ok := fieldByKeyFold(t, k)
			if !ok {
				continue // unknown keys are reported separately
			}
			out = append(out, typeProblems(join(path, k), m[k], f.Type)...)
		}
		return out
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			return at("a table")
		}
		var out []string
		for _, k := range sortedKeys(m) {
			out = append(out, typeProblems(join(path, k), m[k], t.Elem())...)
		}
		return out
	case reflect.Slice:
		rv := reflect.ValueOf(raw)
		if raw == nil || rv.Kind() != reflect.Slice {
			return at("an array")
		}
		var out []string
		for i := range rv.Len() {
			out = append(out, typeProblems(fmt.Sprintf("%s[%d]", path, i), rv.Index(i).Interface(), t.Elem())...)
		}
		return out
	case reflect.String:
		if _, ok := raw.(string); !ok {
			return at("a string")
		}
	case reflect.Int, reflect.Int64:
		if _, ok := raw.(int64); !ok {
			return at("an integer")
		}
	case reflect.Bool:
		if _, ok := raw.(bool); !ok {
			return at("a boolean (true or false)")
		}
	}
	return nil
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describeTOML names the TOML type of a decoded value, with the value when
// it is short, for error messages.
func describeTOML(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			return "a string"
		}
		return fmt.Sprintf("string %q", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return fmt.Sprintf("float %v", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case time.Time:
		return "a datetime"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("a %T", v)
}
