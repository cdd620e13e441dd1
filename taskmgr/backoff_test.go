package taskmgr

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		failures int
		ran      time.Duration
		wait     time.Duration
		next     int
	}{
		{0, 0, 100 * time.Millisecond, 1},
		{1, time.Second, 200 * time.Millisecond, 2},
		{3, 9 * time.Second, 800 * time.Millisecond, 4},
		{9, time.Second, 30 * time.Second, 10}, // 51.2 s, capped
		{40, time.Second, 30 * time.Second, 41},
		{9, 10 * time.Second, 100 * time.Millisecond, 1}, // a stable run resets the count
	} {
		wait, next := backoff(c.failures, c.ran)
		if wait != c.wait || next != c.next {
			t.Errorf("backoff(%d, %v) = %v, %d; want %v, %d", c.failures, c.ran, wait, next, c.wait, c.next)
		}
	}
}
