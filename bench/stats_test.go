package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(100 - i) // 100..1, unsorted
	}
	cases := []struct {
		name string
		xs   []int64
		p    float64
		want int64
	}{
		{"none", nil, 50, 0},
		{"one", []int64{7}, 99, 7},
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 of 1..100", hundred, 100, 100},
		{"p1 of 1..100", hundred, 1, 1},
		{"p50 of 3", []int64{30, 10, 20}, 50, 20},
	}
	for _, c := range cases {
		if got := percentile(c.xs, c.p); got != c.want {
			t.Errorf("%s: percentile(%v) = %d, want %d", c.name, c.p, got, c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	cases := []struct {
		name string
		xs   []time.Duration
		want time.Duration
	}{
		{"none", nil, 0},
		{"odd", []time.Duration{5, 1, 3}, 3},
		{"even", []time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2 in integer nanoseconds
		{"even wide", []time.Duration{10, 30}, 20},
	}
	for _, c := range cases {
		if got := median(c.xs); got != c.want {
			t.Errorf("%s: median(%v) = %d, want %d", c.name, c.xs, got, c.want)
		}
	}
}
