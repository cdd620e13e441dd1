package xl

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "xl")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExec(t *testing.T) {
	ctx := context.Background()
	out, err := Exec(script(t, `echo "$@"`)).Run(ctx, "list", "demo")
	if err != nil || string(out) != "list demo\n" {
		t.Fatalf("Run = %q, %v", out, err)
	}

	_, err = Exec(script(t, `echo "$2 is an invalid domain identifier (rc=-6)" >&2; exit 1`)).Run(ctx, "list", "demo")
	var xe *ExitError
	if !errors.As(err, &xe) {
		t.Fatalf("Run of a failing xl = %v, want an *ExitError", err)
	}
	if !slices.Equal(xe.Args, []string{"list", "demo"}) || xe.Code != 1 || xe.Signal != 0 ||
		xe.Stderr != "demo is an invalid domain identifier (rc=-6)" || !xe.NoDomain() {
		t.Fatalf("ExitError %+v (NoDomain %v)", xe, xe.NoDomain())
	}
	if want := "xl list demo: exit status 1: demo is an invalid domain identifier (rc=-6)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}

	_, err = Exec(script(t, `echo "$2 is an invalid domain identifier" >&2; kill -TERM $$`)).Run(ctx, "list", "demo")
	if !errors.As(err, &xe) || xe.Signal != syscall.SIGTERM || xe.Code != 0 || xe.NoDomain() {
		t.Fatalf("Run of a killed xl = %v (%+v), want an ExitError with SIGTERM that is not NoDomain", err, xe)
	}
	if want := "xl list demo: signal: terminated: demo is an invalid domain identifier"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}

	_, err = Exec(filepath.Join(t.TempDir(), "missing")).Run(ctx, "list")
	if err == nil || errors.As(err, &xe) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Run of a missing xl = %v, want ErrNotExist and no ExitError", err)
	}
}
