package procfs

import (
	"strings"
	"testing"
)

const statLine = "4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	st, err := ParseStat(strings.NewReader(statLine))
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{PID: 4242, Comm: "we ird) (name)", State: 'S', PPID: 1, StartTime: 987654}
	if st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "12 no-parens S 1", "12 (x) S 1 2 3"} {
		if _, err := ParseStat(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseStat(%q) succeeded", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	st, err := ParseStatus(strings.NewReader("Name:\tsleep\nVmRSS:\t   1234 kB\nThreads:\t3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if st != (Status{RSSKiB: 1234, Threads: 3}) {
		t.Fatalf("got %+v", st)
	}
}
