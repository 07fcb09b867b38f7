package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// option is one directive of a unit file with the line it starts on, so that warnings can name
// file:line (go-systemd's parser does not keep line numbers).
type option struct {
	section, name, value string
	line                 int
}

// unitFile is one parsed .service or .socket file.
type unitFile struct {
	path     string   // absolute path
	file     string   // base name, e.g. web.service: what warnings name
	name     string   // without the suffix: web
	kind     string   // "service" or "socket"
	options  []option // in file order
	sections []option // one per section header: name is the section, value empty
}

// warnf formats a warning about line of the file as "FILE:LINE: message" (line 0: "FILE: message").
func (u *unitFile) warnf(line int, format string, args ...any) string {
	if line <= 0 {
		return u.file + ": " + fmt.Sprintf(format, args...)
	}
	return fmt.Sprintf("%s:%d: %s", u.file, line, fmt.Sprintf(format, args...))
}

// readUnit parses path with go-systemd's unit package and attaches to each option the line it
// starts on, found by scanning the file with the same lexical rules (comments, sections,
// continuation lines) and matching the Nth occurrence of each section/name pair.
func readUnit(path string) (*unitFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read unit: %w", err)
	}
	opts, err := unit.DeserializeOptions(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Base(path), err)
	}
	file := filepath.Base(path)
	ext := filepath.Ext(file)
	u := &unitFile{path: path, file: file, name: strings.TrimSuffix(file, ext), kind: strings.TrimPrefix(ext, ".")}
	lines, sections := scanLines(data)
	u.sections = sections
	seen := map[string]int{}
	for _, o := range opts {
		key := o.Section + "\x00" + o.Name
		n := seen[key]
		seen[key] = n + 1
		line := 0
		if ls := lines[key]; n < len(ls) {
			line = ls[n]
		}
		// A continuation line keeps "\\\n" in go-systemd's value; systemd reads it as a space.
		v := strings.TrimSpace(strings.ReplaceAll(o.Value, "\\\n", " "))
		u.options = append(u.options, option{section: o.Section, name: o.Name, value: v, line: line})
	}
	return u, nil
}

// scanLines finds the line of every directive, keyed by "section\x00name" in file order, and of
// every section header, following the lexer of go-systemd's unit package.
func scanLines(data []byte) (map[string][]int, []option) {
	lines := map[string][]int{}
	var sections []option
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	continued := false
	for sc.Scan() {
		n++
		raw := strings.TrimSuffix(sc.Text(), "\r")
		if continued { // the rest of a value that ended in a backslash
			continued = strings.HasSuffix(raw, "\\") && strings.TrimSpace(raw) != ""
			continue
		}
		t := strings.TrimLeft(raw, " \t")
		switch {
		case t == "":
		case t[0] == '#' || t[0] == ';':
			continued = strings.HasSuffix(strings.TrimSuffix(raw, " "), "\\")
		case t[0] == '[':
			if end := strings.IndexByte(t, ']'); end > 0 {
				section = t[1:end]
				sections = append(sections, option{section: section, line: n})
			}
		case section != "":
			name, _, ok := strings.Cut(t, "=")
			if !ok {
				continue
			}
			key := section + "\x00" + strings.TrimSpace(name)
			lines[key] = append(lines[key], n)
			continued = strings.HasSuffix(raw, "\\")
		}
	}
	return lines, sections
}
