package loader

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

func TestAskAllPipelinesInOrder(t *testing.T) {
	c, _ := handshaken(t, echoLoader)
	ctx := testutil.Context(t, 20*time.Second)
	// Far more than one 4 KiB batch, with a request longer than a batch on its own.
	var reqs []Message
	for i := range 600 {
		reqs = append(reqs, Message{"echo", "check", fmt.Sprint(i)})
	}
	reqs[300] = Message{"echo", "big", strings.Repeat("x", 3*pipelineBytes)}
	replies, err := c.AskAll(ctx, 5*time.Second, reqs)
	if err != nil {
		t.Fatalf("AskAll: %v", err)
	}
	if len(replies) != len(reqs) {
		t.Fatalf("%d replies to %d requests", len(replies), len(reqs))
	}
	for i := range reqs {
		if !reflect.DeepEqual(replies[i], reqs[i]) {
			t.Fatalf("reply %d = %.60q, want %.60q: out of order", i, replies[i], reqs[i])
		}
	}
	// The stream is still in step: a plain Ask gets its own reply.
	if m, err := c.Ask(ctx, "echo", "after"); err != nil || m[1] != "after" {
		t.Fatalf("Ask after AskAll = %q, %v", m, err)
	}
	if r, err := c.AskAll(ctx, 0, nil); r != nil || err != nil {
		t.Fatalf("AskAll of nothing = %q, %v", r, err)
	}
	if _, err := c.AskAll(ctx, 0, []Message{{"echo"}}); err == nil || c.Broken() != nil {
		t.Fatalf("AskAll of a request without property = %v, broken %v; want an error, client usable", err, c.Broken())
	}
}

// TestAskAllEachReplyBound: each bounds every reply, not the set. A loader that answers every
// request 50 ms late finishes a set far longer than each (80 replies, at least 4 s, against a
// bound of 3 s for each: generous for a busy machine, where a reply may be late by a second); one that stops answering fails after
// each, names the request, and breaks the Client.
func TestAskAllEachReplyBound(t *testing.T) {
	c, _ := handshaken(t, `#!/bin/bash
echo '["godv1","slow","stuck"]'
while IFS= read -r req; do
	case "$req" in
	'["stuck",'*) sleep 1000 ;;
	*) sleep 0.05; echo '["ok"]' ;;
	esac
done
`)
	ctx := testutil.Context(t, 30*time.Second)
	var reqs []Message
	for range 80 {
		reqs = append(reqs, Message{"slow", "check"})
	}
	const each = 3 * time.Second
	t0 := time.Now()
	if _, err := c.AskAll(ctx, each, reqs); err != nil {
		t.Fatalf("AskAll of a slow but steady loader: %v (after %s)", err, time.Since(t0))
	}
	if took := time.Since(t0); took < each {
		t.Fatalf("80 replies 50 ms apart took %s: the loader did not pipeline as expected", took)
	}

	reqs = []Message{{"slow", "check"}, {"stuck", "check"}, {"slow", "check"}}
	_, err := c.AskAll(ctx, each, reqs)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stuck check") {
		t.Fatalf("AskAll with a request never answered = %v, want DeadlineExceeded naming stuck check", err)
	}
	if c.Broken() == nil {
		t.Fatal("client not broken after a reply came too late")
	}
}

func TestDefineAll(t *testing.T) {
	c, _ := handshaken(t, testLoader)
	ctx := testutil.Context(t, 10*time.Second)
	one, err := c.Define(ctx, "web")
	if err != nil {
		t.Fatalf("Define(web): %v", err)
	}
	defs, err := c.DefineAll(ctx, time.Second, []string{"web", "other", "web"})
	if err != nil {
		t.Fatalf("DefineAll: %v", err)
	}
	if len(defs) != 3 || !reflect.DeepEqual(defs[0], one) || !reflect.DeepEqual(defs[2], one) {
		t.Fatalf("DefineAll = %+v, want web's definition first and last, as Define gives it: %+v", defs, one)
	}
	if d := defs[1]; d.Name != "other" || d.Exec != nil || d.Instances != 1 || d.Restart != RestartAlways {
		t.Fatalf("DefineAll of an undefined job = %+v, want defaults", d)
	}
	// db's instances reply is bad: the set fails naming it, and the client stays usable.
	_, err = c.DefineAll(ctx, time.Second, []string{"web", "db", "web"})
	if err == nil || !strings.Contains(err.Error(), "job db: instances") {
		t.Fatalf("DefineAll with db = %v, want an error naming db and instances", err)
	}
	if c.Broken() != nil {
		t.Fatalf("a bad reply broke the client: %v", c.Broken())
	}
	if d, err := c.Define(ctx, "web"); err != nil || !reflect.DeepEqual(d, one) {
		t.Fatalf("Define(web) after the failed set = %+v, %v", d, err)
	}
}
