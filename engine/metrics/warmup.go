package metrics

import "strconv"

// WarmupRemaining is the warm-up allowance of one egress source to one
// provider today.
type WarmupRemaining struct {
	Source, Provider string
	Remaining        int // -1: no limit
	Used             int
}

// SetWarmup installs the function that gannet_egress_warmup_remaining and
// gannet_egress_warmup_used call at each scrape. It must be safe to call
// from any goroutine.
func (m *Metrics) SetWarmup(f func() []WarmupRemaining) { m.warmup.Store(&f) }

// appendWarmup writes gannet_egress_warmup_remaining{source,provider} (-1:
// no limit left to count: warm for that provider) and
// gannet_egress_warmup_used{source,provider}, today's.
func (m *Metrics) appendWarmup(out []byte) []byte {
	p := m.warmup.Load()
	if p == nil {
		return out
	}
	rows := (*p)()
	if len(rows) == 0 {
		return out
	}
	out = append(out, "# HELP gannet_egress_warmup_remaining Messages a warming egress source may still send to a provider today (-1: no limit).\n"...)
	out = append(out, "# TYPE gannet_egress_warmup_remaining gauge\n"...)
	for _, r := range rows {
		out = appendWarmupRow(out, "gannet_egress_warmup_remaining", r, r.Remaining)
	}
	out = append(out, "# HELP gannet_egress_warmup_used Messages a warming egress source sent to a provider today.\n"...)
	out = append(out, "# TYPE gannet_egress_warmup_used gauge\n"...)
	for _, r := range rows {
		out = appendWarmupRow(out, "gannet_egress_warmup_used", r, r.Used)
	}
	return out
}

func appendWarmupRow(out []byte, name string, r WarmupRemaining, v int) []byte {
	out = append(out, name...)
	out = append(out, `{source="`...)
	out = append(out, escapeLabel(r.Source)...)
	out = append(out, `",provider="`...)
	out = append(out, escapeLabel(r.Provider)...)
	out = append(out, `"} `...)
	out = strconv.AppendInt(out, int64(v), 10)
	return append(out, '\n')
}
