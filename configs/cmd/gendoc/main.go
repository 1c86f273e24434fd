// Command gendoc writes docs/configuration.md, the configuration reference,
// from the doc comments of configs/types.go and the values of
// configs.Default. It is the only source of that file:
//
//	make docs
//	go run ./configs/cmd/gendoc -o docs/configuration.md   # the same
//
// The comments are parsed with go/ast rather than read by reflection
// (reflection does not see comments); the key list is then checked against
// reflection over configs.Config, so a field the parser missed is an
// error, not a silently undocumented key. TestConfigurationDocUpToDate
// fails when the committed file differs from what this writes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/ramd/ramd/configs"
)

func main() {
	src := flag.String("types", "configs/types.go", "the configs package's types.go")
	out := flag.String("o", "", "write here instead of standard output (e.g. docs/configuration.md)")
	flag.Parse()
	b, err := os.ReadFile(*src)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
	doc, err := generate(b)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
	if *out == "" {
		os.Stdout.Write(doc)
		return
	}
	if err := os.WriteFile(*out, doc, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gendoc: wrote %s\n", filepath.ToSlash(*out))
}

// entry is one documented key, or a group of consecutive keys sharing one
// comment (primary_host, primary_port, replica_hosts).
type entry struct {
	fields []*ast.Field // Go fields, in order
	keys   []string     // their TOML keys
	doc    string       // the comment of the first field
}

// section is one [table] of the file.
type section struct {
	key     string // TOML key, e.g. "cluster"
	goField string // Go field of Config, e.g. "Cluster"
	goType  string // its type, e.g. "ClusterConfig"
	doc     string // the struct type's comment
	entries []entry
}

// generate renders the reference from the source of types.go.
func generate(src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "types.go", src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("parse types.go: %w", err)
	}
	types := map[string]*ast.GenDecl{}
	specs := map[string]*ast.TypeSpec{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, s := range g.Specs {
			ts := s.(*ast.TypeSpec)
			types[ts.Name.Name], specs[ts.Name.Name] = g, ts
		}
	}
	root, ok := specs["Config"]
	if !ok {
		return nil, fmt.Errorf("types.go has no Config type")
	}
	var sections []section
	for _, fld := range root.Type.(*ast.StructType).Fields.List {
		key := tagKey(fld)
		typeName := fmt.Sprint(fld.Type)
		ts, ok := specs[typeName]
		if !ok {
			return nil, fmt.Errorf("section [%s]: type %s is not declared in types.go", key, typeName)
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return nil, fmt.Errorf("section [%s]: %s is not a struct", key, typeName)
		}
		sec := section{key: key, goField: fld.Names[0].Name, goType: typeName, doc: commentText(types[typeName].Doc)}
		if sec.doc == "" {
			return nil, fmt.Errorf("section [%s]: type %s has no doc comment", key, typeName)
		}
		for _, sf := range st.Fields.List {
			k := tagKey(sf)
			if k == "" || k == "-" {
				continue
			}
			if sf.Doc == nil {
				if len(sec.entries) == 0 {
					return nil, fmt.Errorf("[%s] %s has no doc comment", key, k)
				}
				last := &sec.entries[len(sec.entries)-1]
				last.fields, last.keys = append(last.fields, sf), append(last.keys, k)
				continue
			}
			sec.entries = append(sec.entries, entry{fields: []*ast.Field{sf}, keys: []string{k}, doc: commentText(sf.Doc)})
		}
		sections = append(sections, sec)
	}
	if err := checkAgainstReflection(sections); err != nil {
		return nil, err
	}
	return render(sections)
}

// checkAgainstReflection makes sure the parsed keys are exactly the ones
// the configs package decodes.
func checkAgainstReflection(sections []section) error {
	want := map[string]bool{}
	ct := reflect.TypeFor[configs.Config]()
	for i := range ct.NumField() {
		sf := ct.Field(i)
		sk := tomlName(sf)
		for j := range sf.Type.NumField() {
			if k := tomlName(sf.Type.Field(j)); k != "" && k != "-" {
				want[sk+"."+k] = true
			}
		}
	}
	got := map[string]bool{}
	for _, s := range sections {
		for _, e := range s.entries {
			for _, k := range e.keys {
				got[s.key+"."+k] = true
			}
		}
	}
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		return fmt.Errorf("types.go and configs.Config disagree (rebuild?): not parsed %v, not in Config %v", missing, extra)
	}
	return nil
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

func tagKey(f *ast.Field) string {
	if f.Tag == nil {
		return ""
	}
	tag := reflect.StructTag(strings.Trim(f.Tag.Value, "`"))
	name, _, _ := strings.Cut(tag.Get("toml"), ",")
	return name
}

// commentText is the comment as paragraphs: lines joined by spaces, blank
// comment lines separating paragraphs.
func commentText(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	var paras []string
	var cur []string
	for _, line := range strings.Split(g.Text(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			if len(cur) > 0 {
				paras = append(paras, strings.Join(cur, " "))
				cur = nil
			}
			continue
		}
		cur = append(cur, line)
	}
	if len(cur) > 0 {
		paras = append(paras, strings.Join(cur, " "))
	}
	return strings.Join(paras, "\n\n")
}

// goIdent matches a Go field name in a comment (a capitalised word with
// another capital or a lower-case tail, as written in types.go).
var goIdent = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)

// quoted matches a double-quoted value in a comment ("250ms",
// "<state_directory>/run"), or a code span a comment already has.
var quoted = regexp.MustCompile("\"[^\"\n]*\"|`[^`\n]*`")

// userText turns a comment into Markdown: quoted values become code spans,
// the Go names of fields and section types become the TOML keys and
// tables a user writes (so the reference speaks the file's language), and
// what Markdown would take for HTML or emphasis is escaped.
func userText(text string, names map[string]string) string {
	var b strings.Builder
	for text != "" {
		loc := quoted.FindStringIndex(text)
		plain := text
		if loc != nil {
			plain = text[:loc[0]]
		}
		plain = strings.NewReplacer("<", "&lt;", ">", "&gt;", "*", "\\*").Replace(plain)
		b.WriteString(goIdent.ReplaceAllStringFunc(plain, func(w string) string {
			if k, ok := names[w]; ok {
				return k
			}
			return w
		}))
		if loc == nil {
			break
		}
		if m := text[loc[0]:loc[1]]; m[0] == '`' {
			b.WriteString(m)
		} else {
			b.WriteString("`" + m + "`")
		}
		text = text[loc[1]:]
	}
	return b.String()
}

func render(sections []section) ([]byte, error) {
	def := reflect.ValueOf(configs.Default()).Elem()
	var b bytes.Buffer
	b.WriteString(`# ramd configuration reference

<!-- Generated by "make docs" (go run ./configs/cmd/gendoc -o docs/configuration.md)
     from the field comments of configs/types.go and the values of
     configs.Default. Do not edit: edit those and regenerate.
     configs/cmd/gendoc's test fails when this file is stale. -->

One TOML file per node (` + "`ramd start --config FILE`" + `, default
` + "`/etc/ramd/ramd.toml`" + ` with ` + "`make install`" + `). Every key below is optional
unless marked required; ` + "`configs/ramd.toml`" + ` is an annotated example with
every key, and ` + "`ramd config validate --config FILE`" + ` checks a file. Unknown
keys are errors (a typo cannot silently leave a default in place);
durations are strings with a unit (` + "`\"250ms\"`, `\"5s\"`" + `), bare numbers are
rejected. Relative paths are relative to the directory of the file.

Every key can be overridden from the environment as
` + "`RAMD_<SECTION>_<KEY>`" + ` (shown under each key; lists are comma-separated,
tables take ` + "`k=v,k2=v2`" + `), plus the shortcuts ` + "`RAMD_NODE_ID`" + `,
` + "`RAMD_CLUSTER_NAME`, `RAMD_API_PORT` and `RAMD_LOG_LEVEL`" + `. A running node
shows its effective configuration, with the source of each value, at
` + "`GET /api/v1/config`" + ` (` + "`ramctl config show`" + `).

"Default" is the value ` + "`configs.Default()`" + ` holds; "derived" defaults are
computed from other keys when the file is loaded (the description says
how).

`)
	b.WriteString("## Sections\n\n")
	for _, s := range sections {
		fmt.Fprintf(&b, "- [`[%s]`](#%s)", s.key, s.key)
		var keys []string
		for _, e := range s.entries {
			keys = append(keys, e.keys...)
		}
		fmt.Fprintf(&b, ": %s\n", strings.Join(keys, ", "))
	}
	b.WriteString("\n")
	for _, s := range sections {
		names := map[string]string{s.goType: "`[" + s.key + "]`"}
		for _, e := range s.entries {
			for i, f := range e.fields {
				for _, n := range f.Names {
					names[n.Name] = "`" + e.keys[i] + "`"
				}
			}
		}
		fmt.Fprintf(&b, "## [%s]\n\n%s\n\n", s.key, userText(s.doc, names))
		secVal := def.FieldByName(s.goField)
		for _, e := range s.entries {
			var heads []string
			for _, k := range e.keys {
				heads = append(heads, "`"+k+"`")
			}
			fmt.Fprintf(&b, "### %s\n\n", strings.Join(heads, ", "))
			for i, f := range e.fields {
				for _, n := range f.Names {
					fv := secVal.FieldByName(n.Name)
					if !fv.IsValid() {
						return nil, fmt.Errorf("[%s] %s: no field %s in configs.Config", s.key, e.keys[i], n.Name)
					}
					fmt.Fprintf(&b, "- `%s`: %s; default %s; `%s`\n", e.keys[i], typeName(fv.Type()), defaultText(fv, e.doc), envName(s.key, e.keys[i]))
				}
			}
			fmt.Fprintf(&b, "\n%s\n\n", userText(e.doc, names))
		}
	}
	return append(bytes.TrimRight(b.Bytes(), "\n"), '\n'), nil
}

func envName(section, key string) string {
	return "RAMD_" + strings.ToUpper(section) + "_" + strings.ToUpper(key)
}

var durationType = reflect.TypeFor[configs.Duration]()

// typeName is the TOML type a user writes.
func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64 || t.Kind() == reflect.Uint64:
		return "integer"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "list of strings"
	case t.Kind() == reflect.Map:
		return "table"
	}
	return t.String()
}

// defaultText renders the value configs.Default holds, or says "required"
// or "derived" when the field's comment does and the value is zero.
func defaultText(v reflect.Value, doc string) string {
	if v.IsZero() {
		switch {
		case strings.Contains(doc, "Required"):
			return "none (**required**)"
		case strings.Contains(doc, "Default: derived"):
			return "derived"
		}
	}
	switch {
	case v.Type() == durationType:
		return "`\"" + shortDuration(v.Interface().(configs.Duration)) + "\"`"
	case v.Kind() == reflect.String:
		return fmt.Sprintf("`%q`", v.String())
	case v.Kind() == reflect.Slice:
		var items []string
		for i := range v.Len() {
			items = append(items, fmt.Sprintf("%q", v.Index(i).String()))
		}
		return "`[" + strings.Join(items, ", ") + "]`"
	case v.Kind() == reflect.Map:
		if v.Len() == 0 {
			return "none"
		}
		return fmt.Sprintf("`%v`", v.Interface())
	}
	return fmt.Sprintf("`%v`", v.Interface())
}

// shortDuration prints 250ms, 5s, 1m30s (time.Duration's String without
// the trailing zero units).
func shortDuration(d configs.Duration) string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
