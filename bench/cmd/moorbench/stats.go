package main

import (
	"math"
	"slices"
	"time"
)

// sample is a set of measurements of one thing, in milliseconds.
type sample []float64

func (s sample) sorted() []float64 { c := slices.Clone(s); slices.Sort(c); return c }

// quantile is the q-th quantile by the nearest-rank method; NaN when empty.
func (s sample) quantile(q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := s.sorted()
	i := int(math.Ceil(q*float64(len(c)))) - 1
	return c[max(0, min(i, len(c)-1))]
}

func (s sample) median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := s.sorted()
	if n := len(c); n%2 == 0 {
		return (c[n/2-1] + c[n/2]) / 2
	}
	return c[len(c)/2]
}

func (s sample) min() float64 { return s.quantile(0) }
func (s sample) max() float64 { return s.quantile(1) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// round2 keeps two decimals, for the JSON line.
func round2(v float64) float64 {
	if math.IsNaN(v) {
		return v
	}
	return math.Round(v*100) / 100
}
