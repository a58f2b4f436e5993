package main

import (
	"math"
	"math/bits"
	"time"
)

// Histogram counts non-negative durations (nanoseconds) in log-linear
// buckets, the layout of HdrHistogram: values below 2^histSubBits ns are
// counted exactly; above that, every power of two is split into
// 2^histSubBits equal buckets, so a bucket is never wider than 1/128
// (0.78 %) of the values it holds. Quantile answers with the highest value
// of the bucket holding the rank, clamped to the observed min and max: it
// never understates a latency and overstates it by at most 0.78 %.
//
// A Histogram is not safe for concurrent use; Recorder shards them.
// Memory is fixed (histBuckets counters, 34 KiB) whatever is recorded.
type Histogram struct {
	counts   []uint64
	total    uint64
	min, max int64
	sum      float64
}

const (
	histSubBits  = 7
	histSubCount = 1 << histSubBits
	// Values at or above 2^histMaxExp ns (about 18 minutes) all land in the
	// last bucket; min/max stay exact.
	histMaxExp  = 40
	histBuckets = histSubCount * (histMaxExp - histSubBits + 1)
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, histBuckets), min: math.MaxInt64}
}

// histBucket returns the bucket index of v (ns).
func histBucket(v int64) int {
	if v < histSubCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1 // position of the top bit, ≥ histSubBits
	if e >= histMaxExp {
		return histBuckets - 1
	}
	shift := e - histSubBits
	sub := int(uint64(v)>>shift) - histSubCount // 0 … histSubCount-1
	return histSubCount + shift*histSubCount + sub
}

// histBucketHigh returns the highest value that falls into bucket i.
func histBucketHigh(i int) int64 {
	if i < histSubCount {
		return int64(i)
	}
	shift := (i - histSubCount) / histSubCount
	sub := (i - histSubCount) % histSubCount
	low := int64(histSubCount+sub) << shift
	return low + (int64(1) << shift) - 1
}

// Record counts one value.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[histBucket(v)]++
	h.total++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest value recorded (exact).
func (h *Histogram) Max() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.max)
}

// Min is the smallest value recorded (exact).
func (h *Histogram) Min() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Mean is the exact arithmetic mean.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Quantile returns the nearest-rank q-quantile (0 < q ≤ 1): the smallest
// bucket value v such that at least ⌈q·n⌉ recorded values are ≤ v.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := histBucketHigh(i)
			v = min(max(v, h.min), h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
