package shaping

import "time"

// meterBuckets is the number of one-second buckets a meter keeps.
const meterBuckets = 4

// meter measures a path's transaction rate over the last few seconds:
// counts in one-second buckets, the current one excluded from the rate
// while it is still filling.
type meter struct {
	sec    [meterBuckets]int64 // the second (Unix) each bucket counts
	counts [meterBuckets]int
}

func (m *meter) add(now time.Time) {
	s := now.Unix()
	i := int(s % meterBuckets)
	if m.sec[i] != s {
		m.sec[i], m.counts[i] = s, 0
	}
	m.counts[i]++
}

// rate returns transactions per second over the completed seconds still
// held (0 when there are none).
func (m *meter) rate(now time.Time) float64 {
	s := now.Unix()
	total, secs := 0, 0
	for d := int64(1); d < meterBuckets; d++ {
		t := s - d
		i := int(((t % meterBuckets) + meterBuckets) % meterBuckets)
		if m.sec[i] == t {
			total += m.counts[i]
		}
		secs++
	}
	// The current, partial second counts too when it holds more than the
	// average (a burst that has just started).
	if i := int(s % meterBuckets); m.sec[i] == s && secs > 0 && float64(m.counts[i]) > float64(total)/float64(secs) {
		return float64(total+m.counts[i]) / (float64(secs) + float64(now.Nanosecond())/1e9)
	}
	if secs == 0 {
		return 0
	}
	return float64(total) / float64(secs)
}
