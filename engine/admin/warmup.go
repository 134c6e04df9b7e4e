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
