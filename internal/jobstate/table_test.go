package jobstate

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated parts of docs/states.md from the table")

const statesDoc = "../../docs/states.md"

// generated is a part of docs/states.md written from Transitions, between its markers.
type generated struct{ begin, end, body string }

func docParts() []generated {
	return []generated{
		{"<!-- BEGIN diagram: generated from internal/jobstate.Transitions -->", "<!-- END diagram -->", "```mermaid\n" + Mermaid() + "```\n"},
		{"<!-- BEGIN table: generated from internal/jobstate.Transitions -->", "<!-- END table -->", MarkdownTable()},
	}
}

// TestStatesDocMatchesTable keeps the diagram and the table of docs/states.md equal to the
// machine's table; `go test ./internal/jobstate -run StatesDoc -update` rewrites them.
func TestStatesDocMatchesTable(t *testing.T) {
	data, err := os.ReadFile(statesDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, g := range docParts() {
		i, j := strings.Index(doc, g.begin), strings.Index(doc, g.end)
		if i < 0 || j < i {
			t.Fatalf("%s: markers %q ... %q missing", statesDoc, g.begin, g.end)
		}
		have := doc[i+len(g.begin)+1 : j]
		if have == g.body {
			continue
		}
		if !*update {
			t.Errorf("%s differs from the state table; run go test ./internal/jobstate -run StatesDoc -update\nwant:\n%s", statesDoc, g.body)
			continue
		}
		doc = doc[:i+len(g.begin)+1] + g.body + doc[j:]
	}
	if *update {
		if err := os.WriteFile(statesDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTableCoversStates: every state is reached and left by some move (but the ends).
func TestTableCoversStates(t *testing.T) {
	in, out := map[State]bool{}, map[State]bool{}
	for _, tr := range Transitions {
		out[tr.From], in[tr.To] = true, true
		if tr.From == tr.To {
			t.Errorf("%s -> %s: a move to the same state is no move", tr.From, tr.To)
		}
	}
	for _, s := range States {
		if s != StateWait && !in[s] {
			t.Errorf("no move enters %s", s)
		}
		if !out[s] {
			t.Errorf("no move leaves %s", s)
		}
	}
}

// TestStrictPanicsOnBadMove: a move the table does not allow panics in a strict machine.
func TestStrictPanicsOnBadMove(t *testing.T) {
	m := New("web", "/l", def(), DefaultPolicy, t0)
	m.Strict = true
	defer func() {
		if recover() == nil {
			t.Fatal("wait -> done did not panic")
		}
	}()
	m.move(StateDone, "test")
}
