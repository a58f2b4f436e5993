package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistBucketBounds(t *testing.T) {
	// Every value falls in a bucket whose range holds it and is at most
	// 1/128 of its values wide; buckets are ordered.
	check := func(v int64) {
		i := histBucket(v)
		hi := histBucketHigh(i)
		lo := int64(0)
		if i > 0 {
			lo = histBucketHigh(i-1) + 1
		}
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if v >= histSubCount && float64(hi-lo+1) > float64(lo)/histSubCount {
			t.Fatalf("bucket %d = [%d, %d] wider than 1/%d of its values", i, lo, hi, histSubCount)
		}
	}
	for v := int64(0); v < 5000; v++ {
		check(v)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		check(r.Int64N(1 << histMaxExp))
	}
	for e := 0; e < histMaxExp; e++ {
		check(1 << e)
		check(1<<e - 1)
		check(1<<e + 1)
	}
	if got := histBucketHigh(histBuckets - 1); got != 1<<histMaxExp-1 {
		t.Fatalf("last bucket ends at %d, want %d", got, int64(1)<<histMaxExp-1)
	}
	if histBucket(1<<62) != histBuckets-1 || histBucket(-5) != 0 {
		t.Fatal("values out of range are not clamped")
	}
}

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestHistQuantilesMatchExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		gen  func() int64
	}{
		{"lognormal around 2ms", func() int64 { return int64(math.Exp(r.NormFloat64()*0.8) * 2e6) }},
		{"uniform 0-50ms", func() int64 { return r.Int64N(50e6) }},
		{"bimodal with a slow tail", func() int64 {
			if r.IntN(100) == 0 {
				return 200e6 + r.Int64N(100e6)
			}
			return 500e3 + r.Int64N(1e6)
		}},
		{"tiny exact values", func() int64 { return r.Int64N(100) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistogram()
			vals := make([]int64, 100000)
			var sum float64
			for i := range vals {
				vals[i] = tc.gen()
				sum += float64(vals[i])
				h.Record(time.Duration(vals[i]))
			}
			slices.Sort(vals)
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
				want := exactQuantile(vals, q)
				got := int64(h.Quantile(q))
				// Never below the exact value, at most one bucket above.
				if got < want || float64(got-want) > float64(want)/histSubCount+1 {
					t.Errorf("q%.4f = %d, exact %d", q, got, want)
				}
			}
			if h.Count() != uint64(len(vals)) || int64(h.Max()) != vals[len(vals)-1] || int64(h.Min()) != vals[0] {
				t.Errorf("count/min/max = %d/%d/%d", h.Count(), h.Min(), h.Max())
			}
			if mean := sum / float64(len(vals)); math.Abs(float64(h.Mean())-mean) > 1 {
				t.Errorf("mean %v, exact %v", h.Mean(), mean)
			}
		})
	}
}

func TestHistSmallAndEmpty(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.99) != 0 || h.Max() != 0 || h.Mean() != 0 || h.Min() != 0 {
		t.Fatal("empty histogram is not all zero")
	}
	// 1..100 ms: nearest rank p50 is 50 ms, p99 99 ms, p100 100 ms.
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond, 0.001: time.Millisecond} {
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/histSubCount {
			t.Errorf("q%v = %v, want %v", q, got, want)
		}
	}
	// A single value is exact at every quantile (clamped to min/max).
	one := NewHistogram()
	one.Record(1234567 * time.Nanosecond)
	for _, q := range []float64{0.0001, 0.5, 0.99, 1} {
		if got := one.Quantile(q); got != 1234567 {
			t.Errorf("single value: q%v = %v", q, got)
		}
	}
	neg := NewHistogram()
	neg.Record(-time.Second)
	if neg.Max() != 0 || neg.Count() != 1 {
		t.Error("a negative duration is not recorded as 0")
	}
}

func TestHistMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	all, a, b := NewHistogram(), NewHistogram(), NewHistogram()
	for i := range 50000 {
		v := time.Duration(r.Int64N(1e9))
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(b)
	a.Merge(NewHistogram())
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%v: merged %v, direct %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() {
		t.Error("merged count/min/max differ")
	}
}

func BenchmarkHistRecord(b *testing.B) {
	h := NewHistogram()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i%1000000) * 100)
	}
}
