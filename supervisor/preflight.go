package supervisor

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/internal/upgradestate"
)

// The pre-flight of `god upgrade` proves that the new binary is a god that can take over, before
// god execs it. An exit code proves nothing (`#!/bin/sh\nexit 0` has one), so the running god
// hands the new binary its state on stdin and a nonce in GOD_UPGRADE_PREFLIGHT, and the binary
// must answer on fd 3 with one JSON line: the nonce, the state version it read, the number of
// jobs it found, its own version. Only a god that parsed and accepted the state can write it.
//
// A god from before the handshake sets GOD_UPGRADE_PREFLIGHT=1 and gives no fd 3: a new god
// pre-flighted by it answers with its exit code alone, as then.

// preflightAnswer is the line a new god writes on fd 3 once it accepted the state.
type preflightAnswer struct {
	God          string `json:"god"`           // its version
	Nonce        string `json:"nonce"`         // GOD_UPGRADE_PREFLIGHT, echoed
	StateVersion int    `json:"state_version"` // of the state it read
	Jobs         int    `json:"jobs"`          // in the state it read
}

// preflightAnswerFd is the fd the new binary answers on.
const preflightAnswerFd = 3

// legacyPreflight is what a god from before the handshake puts in GOD_UPGRADE_PREFLIGHT.
const legacyPreflight = "1"

// AnswerPreflight is the new binary's side: st is the state it read and accepted. It writes the
// answer when the running god asked for one, and does nothing for an older god.
func AnswerPreflight(st *upgradestate.State, version string) error {
	nonce := os.Getenv(upgradestate.EnvPreflight)
	if nonce == "" || nonce == legacyPreflight {
		return nil
	}
	f := os.NewFile(preflightAnswerFd, "preflight-answer")
	if f == nil {
		return errors.New("pre-flight: no answer fd")
	}
	defer f.Close()
	line, err := json.Marshal(preflightAnswer{God: version, Nonce: nonce, StateVersion: st.Version, Jobs: len(st.Jobs)})
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	return err
}

// newNonce is a random token for one pre-flight.
func newNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// preflight runs the new binary on the state: it must answer the handshake and exit 0. The
// error says what the binary did instead, with the end of its output.
func (s *Supervisor) preflight(ctx context.Context, opts UpgradeOptions, st *upgradestate.State) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	nonce, err := newNonce()
	if err != nil {
		return err
	}
	var pipes [3][2]*os.File // stdin, stdout+stderr, the answer
	for i := range pipes {
		if pipes[i][0], pipes[i][1], err = os.Pipe(); err != nil {
			for _, p := range pipes[:i] {
				p[0].Close()
				p[1].Close()
			}
			return err
		}
	}
	inR, inW := pipes[0][0], pipes[0][1]
	outR, outW := pipes[1][0], pipes[1][1]
	ansR, ansW := pipes[2][0], pipes[2][1]
	env := append(baseEnv(), upgradestate.EnvPreflight+"="+nonce)
	pid, exitc, err := s.reaper.Start(reaper.Attr{Path: opts.Exe, Argv: append([]string{opts.Exe}, opts.Argv[1:]...), Env: env,
		Files: []uintptr{inR.Fd(), outW.Fd(), outW.Fd(), ansW.Fd()}, Setpgid: true})
	inR.Close()
	outW.Close()
	ansW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		ansR.Close()
		return err
	}
	go func() { inW.Write(data); inW.Close() }()
	outc := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(io.LimitReader(outR, 64<<10)); outR.Close(); outc <- b }()
	ansc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(io.LimitReader(ansR, 4<<10)).ReadString('\n')
		io.Copy(io.Discard, io.LimitReader(ansR, 64<<10)) // until the binary is gone
		ansR.Close()
		ansc <- line
	}()
	timer := time.NewTimer(opts.Preflight)
	defer timer.Stop()
	select {
	case e := <-exitc:
		out, answer := <-outc, <-ansc
		if !e.Success() {
			return fmt.Errorf("pre-flight %s: %s", e.String(), trimOutput(out))
		}
		return checkPreflightAnswer(answer, nonce, st, out)
	case <-timer.C:
	case <-ctx.Done():
	}
	_ = s.reaper.SignalGroup(pid, syscall.SIGKILL)
	<-exitc
	return fmt.Errorf("pre-flight did not finish within %s", opts.Preflight)
}

// checkPreflightAnswer accepts only the answer of a god that read this very state.
func checkPreflightAnswer(line, nonce string, st *upgradestate.State, out []byte) error {
	said := ""
	if o := strings.TrimSpace(trimOutput(out)); o != "" {
		said = "; its output: " + o
	}
	if strings.TrimSpace(line) == "" {
		return fmt.Errorf("exited 0 without answering the pre-flight handshake: it is not a god that can take over%s", said)
	}
	var a preflightAnswer
	if err := json.Unmarshal([]byte(line), &a); err != nil {
		return fmt.Errorf("answered the pre-flight handshake with %.200q, not a god's answer%s", strings.TrimSpace(line), said)
	}
	switch {
	case a.Nonce != nonce:
		return fmt.Errorf("answered the pre-flight handshake with another nonce (%.40q)%s", a.Nonce, said)
	case a.StateVersion != st.Version || a.Jobs != len(st.Jobs):
		return fmt.Errorf("read a state of version %d with %d jobs, god handed version %d with %d jobs%s",
			a.StateVersion, a.Jobs, st.Version, len(st.Jobs), said)
	}
	return nil
}
