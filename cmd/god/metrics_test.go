package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFindExporter: god-metrics next to god wins, PATH is the fallback, and the error names
// every place looked at.
func TestFindExporter(t *testing.T) {
	godDir, pathDir := t.TempDir(), t.TempDir()
	exe := filepath.Join(godDir, "god")
	t.Setenv("PATH", pathDir)
	if _, err := findExporter(exe); err == nil ||
		!strings.Contains(err.Error(), filepath.Join(godDir, "god-metrics")) || !strings.Contains(err.Error(), pathDir) {
		t.Fatalf("no exporter anywhere: %v", err)
	}
	// Present but not executable is not found.
	if err := os.WriteFile(filepath.Join(pathDir, "god-metrics"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := findExporter(exe); err == nil {
		t.Fatalf("a file that is not executable was taken: %s", p)
	}
	if err := os.Chmod(filepath.Join(pathDir, "god-metrics"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := findExporter(exe); err != nil || p != filepath.Join(pathDir, "god-metrics") {
		t.Fatalf("in PATH: %q, %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(godDir, "god-metrics"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := findExporter(exe); err != nil || p != filepath.Join(godDir, "god-metrics") {
		t.Fatalf("next to god: %q, %v", p, err)
	}
	// When god does not know its own path, PATH alone.
	if p, err := findExporter(""); err != nil || p != filepath.Join(pathDir, "god-metrics") {
		t.Fatalf("god's path unknown: %q, %v", p, err)
	}
}

// TestListenMetrics: god's own socket for --metrics, and errors that name the flag and the
// address.
func TestListenMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	if _, err := listenMetrics(taken); err == nil || !strings.Contains(err.Error(), "--metrics "+taken) ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Errorf("taken address: %v", err)
	}
	if _, err := listenMetrics("no-port"); err == nil || !strings.Contains(err.Error(), "--metrics no-port") {
		t.Errorf("invalid address: %v", err)
	}
	f, err := listenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := net.FileListener(f); err != nil {
		t.Errorf("not a listening socket: %v", err)
	}
}

// TestCheckMetricsFlags is the pre-flight's check: only --metrics needs the exporter.
func TestCheckMetricsFlags(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	exe := filepath.Join(t.TempDir(), "god")
	if err := checkMetricsFlags([]string{"--dir", "/d"}, exe); err != nil {
		t.Errorf("without --metrics: %v", err)
	}
	if err := checkMetricsFlags([]string{"run", "--dir", "/d", "--metrics", "127.0.0.1:9100"}, exe); err == nil ||
		!strings.Contains(err.Error(), "--metrics 127.0.0.1:9100") || !strings.Contains(err.Error(), "god-metrics not found") {
		t.Errorf("--metrics without the exporter: %v", err)
	}
}
