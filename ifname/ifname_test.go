package ifname

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"eth0": true, "nbu1x1": true, "br-lan": true, "_.-": true, "veth.1": true,
		strings.Repeat("t", MaxLen): true, strings.Repeat("t", MaxLen+1): false,
		"": false, ".": false, "..": false, "...": true,
		"t:0": false, "a/b": false, "a b": false, "a\tb": false, "a,b": false, "a'b": false, "é": false,
	} {
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}
