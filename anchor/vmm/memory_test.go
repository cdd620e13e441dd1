package vmm

import (
	"slices"
	"strings"
	"testing"
)

func TestReadOnlyMappings(t *testing.T) {
	maps := `00400000-00401000 r--p 00000000 fe:00 9979634                            /run/moor/anchor
00401000-008d9000 r-xp 00001000 fe:00 9979634                            /run/moor/anchor
008d9000-00dc4000 r--p 004d9000 fe:00 9979634                            /run/moor/anchor
00dc4000-00dc9000 rw-p 009c3000 fe:00 9979634                            /run/moor/anchor
00e00000-00e01000 r--p 00000000 fe:01 9979634                            /other/dev
00f00000-00f01000 r--s 00000000 fe:00 9979634                            /run/moor/anchor
7fb1b2c80000-7fb1b2c82000 r-xp 00000000 00:00 0                          [vdso]
`
	got := readOnlyMappings(strings.NewReader(maps), 0xfe, 0, 9979634)
	want := []mapping{{0x400000, 0x401000}, {0x401000, 0x8d9000}, {0x8d9000, 0xdc4000}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}
