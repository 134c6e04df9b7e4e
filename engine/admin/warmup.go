package admin

// WarmupEntry is the warm-up allowance of one warming egress source to one
// provider today, in the queue summary (warmup).
type WarmupEntry struct {
	Source    string `json:"source"`
	Provider  string `json:"provider"`        // a provider table's name; "default": the rest
	Start     string `json:"start,omitempty"` // day 1 (YYYY-MM-DD, UTC); empty: not used yet
	Day       int    `json:"day"`             // 0: not used yet
	Allowance int    `json:"allowance"`       // messages today; -1: no limit (warm)
	Used      int    `json:"used"`
	Remaining int    `json:"remaining"` // -1: no limit
}

// warmups returns the warm-up allowances (nil: no warming source).
func (h *handler) warmups() []WarmupEntry {
	if h.opts.Warmup == nil {
		return nil
	}
	return h.opts.Warmup()
}

// mergeWarmup adds the warm-up rows of one node of a cluster to into. The
// nodes share a source's allowance (engine/warmup's shared.go): rows of
// the same source and provider add up their counts, and the allowance is
// the one of the earliest start (the cluster's day 1), not a sum; -1 (no
// limit) on any node stays -1, and what remains is the allowance less the
// fleet's count.
func mergeWarmup(into map[[2]string]*WarmupEntry, rows []WarmupEntry) {
	for _, w := range rows {
		k := [2]string{w.Source, w.Provider}
		m := into[k]
		if m == nil {
			w := w
			into[k] = &w
			continue
		}
		m.Used += w.Used
		noLimit := m.Allowance < 0 || w.Allowance < 0
		if w.Start != "" && (m.Start == "" || w.Start < m.Start) {
			m.Start, m.Day, m.Allowance = w.Start, w.Day, w.Allowance
		}
		if noLimit {
			m.Allowance, m.Remaining = -1, -1
		} else {
			m.Remaining = max(0, m.Allowance-m.Used)
		}
	}
}
