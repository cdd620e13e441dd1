package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func TestStepClockSplitsAtFirstMarks(t *testing.T) {
	c := &stepClock{}
	c.reset()
	start := time.Now()
	at := map[string]time.Time{}
	for i, st := range profileSteps {
		if len(st.markers) == 0 {
			continue
		}
		at[st.Key] = start.Add(time.Duration(i+1) * time.Millisecond)
		// nsexec prefixes its messages; a repeated message must not move the mark.
		if err := c.Fire(&logrus.Entry{Message: "nsexec[1]: " + st.markers[0] + " ..."}); err != nil {
			t.Fatal(err)
		}
		c.at[st.Key] = at[st.Key]
		if err := c.Fire(&logrus.Entry{Message: st.markers[len(st.markers)-1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Fire(&logrus.Entry{Message: "unrelated"}); err != nil {
		t.Fatal(err)
	}
	end := start.Add(time.Duration(len(profileSteps)+1) * time.Millisecond) // 2 ms after the last mark
	d, err := c.durations(start, end)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != len(profileSteps) {
		t.Fatalf("%d durations for %d steps", len(d), len(profileSteps))
	}
	var sum float64
	for i, v := range d[:len(d)-1] {
		if v != 1 {
			t.Errorf("step %s: %v ms, want 1", profileSteps[i].Key, v)
		}
		sum += v
	}
	if last := d[len(d)-1]; last != 2 {
		t.Errorf("last step: %v ms, want 2 (until the end)", last)
	}
	if got, want := sum+d[len(d)-1], ms(end.Sub(start)); got != want {
		t.Errorf("steps sum to %v ms, want the whole %v", got, want)
	}
}

func TestStepClockMissingMark(t *testing.T) {
	c := &stepClock{}
	c.reset()
	_ = c.Fire(&logrus.Entry{Message: profileSteps[0].markers[0]})
	_, err := c.durations(time.Now(), time.Now())
	if err == nil || !strings.Contains(err.Error(), profileSteps[1].markers[0]) {
		t.Fatalf("durations with marks missing: %v, want an error naming %q", err, profileSteps[1].markers)
	}
}

func TestSampleStatistics(t *testing.T) {
	s := sample{5, 1, 4, 2, 3, 10}
	if m := s.median(); m != 3.5 {
		t.Errorf("median %v, want 3.5", m)
	}
	if q := s.quantile(0.95); q != 10 {
		t.Errorf("p95 %v, want 10", q)
	}
	if s.min() != 1 || s.max() != 10 {
		t.Errorf("min–max %v–%v, want 1–10", s.min(), s.max())
	}
	if s[0] != 5 {
		t.Error("statistics reordered the sample")
	}
	if !math.IsNaN(sample{}.median()) {
		t.Error("median of nothing is not NaN")
	}
}
