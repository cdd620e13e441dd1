package main

import "testing"

func TestServerVersion(t *testing.T) {
	out := `Client:
  Version:  1.6.20~ds1
  Revision: 1.6.20~ds1-1+deb12u3
  Go version: go1.19.8

Server:
  Version:  1.6.21
  Revision: 1.6.21-1
  UUID: 4c0e4a4e-8f6b-4d5e-9c1f-2b1a3c4d5e6f
`
	if v := serverVersion(out); v != "1.6.21" {
		t.Errorf("serverVersion = %q, want the server's 1.6.21", v)
	}
	if v := serverVersion("Client:\n  Version: 1.6.20\n"); v != "unknown" {
		t.Errorf("serverVersion without a server = %q, want unknown", v)
	}
}
