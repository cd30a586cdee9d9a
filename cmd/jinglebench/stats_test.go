package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"single", ms(7), 50, 7 * time.Millisecond},
		{"single p95", ms(7), 95, 7 * time.Millisecond},
		{"p50 of odd count", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"p50 of even count is the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p100 is the maximum", ms(4, 9, 1), 100, 9 * time.Millisecond},
		{"tiny p is the minimum", ms(4, 9, 1), 0.1, 1 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p95 of 1..100", ms(hundred...), 95, 95 * time.Millisecond},
		{"p95 of 10 samples is the 10th", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 95, 10 * time.Millisecond},
		{"p90 of 10 samples is the 9th", ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 90, 9 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.samples)
			got, err := Percentile(tc.samples, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.samples, tc.p, got, tc.want)
			}
			if !slices.Equal(before, tc.samples) {
				t.Errorf("Percentile reordered its input")
			}
		})
	}
}

func TestPercentileErrors(t *testing.T) {
	for _, tc := range []struct {
		samples []time.Duration
		p       float64
	}{
		{nil, 50},
		{[]time.Duration{1}, 0},
		{[]time.Duration{1}, -5},
		{[]time.Duration{1}, 100.5},
		{[]time.Duration{1}, math.NaN()},
	} {
		if _, err := Percentile(tc.samples, tc.p); err == nil {
			t.Errorf("Percentile(%v, %v) gave no error", tc.samples, tc.p)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1000, 1, 2}, 2},
	} {
		if got := Median(tc.xs); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestMBPerS(t *testing.T) {
	if got := MBPerS(500e6, 2*time.Second); got != 250 {
		t.Errorf("MBPerS = %v, want 250", got)
	}
	if got := MBPerS(1, 0); !math.IsInf(got, 1) {
		t.Errorf("MBPerS over no time = %v, want +Inf", got)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4096", 4096, true},
		{"1GiB", 1 << 30, true},
		{"10gib", 10 << 30, true},
		{"256MiB", 256 << 20, true},
		{"64k", 64 << 10, true},
		{"1MB", 1e6, true},
		{" 2 GB ", 2e9, true},
		{"0", 0, true},
		{"", 0, false},
		{"GiB", 0, false},
		{"1.5GiB", 0, false},
		{"-1", 0, false},
		{"1TiB", 0, false},
		{"99999999999999999999", 0, false},
		{"9999999999GiB", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{1 << 30, "1GiB"}, {10 << 30, "10GiB"}, {1536 << 10, "1536KiB"}, {1000, "1000B"}, {0, "0B"}} {
		if got := FormatSize(tc.n); got != tc.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
		if back, err := ParseSize(FormatSize(tc.n)); err != nil || back != tc.n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", tc.n, back, err)
		}
	}
}
