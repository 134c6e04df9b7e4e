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

// mergeWarmup adds the warm-up rows of one node of a cluster to into: each
// node counts its own sources, so rows of the same source and provider
// (a source name several nodes use) add up; -1 (no limit) on any node
// stays -1, and the earliest start is kept.
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
		m.Allowance = addLimit(m.Allowance, w.Allowance)
		m.Remaining = addLimit(m.Remaining, w.Remaining)
		if w.Start != "" && (m.Start == "" || w.Start < m.Start) {
			m.Start, m.Day = w.Start, w.Day
		}
	}
}

// addLimit adds two counts where -1 means no limit.
func addLimit(a, b int) int {
	if a < 0 || b < 0 {
		return -1
	}
	return a + b
}
