package delivery

import "slices"

// Holds: an operator's "do not deliver this until I say so", by selector
// or by message id (gannet queue hold / release). A hold works as a
// suspension without an expiry: matching mail is held, unattempted and not
// expiring, when it comes due or when a site worker takes it, and goes at
// once when the hold is released. Mail waiting for a retry when a hold is
// made keeps its retry time and is held when it comes due. Holds are
// stored with the other rules (rulestore.go) and are in force again after
// a restart. Bounces in force come first: held mail that a bounce matches
// is bounced; a suspension and a hold that both match hold it once.

// holding returns every rule that holds items: suspensions and holds.
// Call with a.mu held.
func (a *adminState) holding() []*adminRule {
	out := make([]*adminRule, 0, len(a.suspends)+len(a.holds))
	for _, r := range a.suspends {
		out = append(out, r)
	}
	for _, r := range a.holds {
		out = append(out, r)
	}
	return out
}

// holdLocked returns a hold in force for mail of message id at domain.
func (a *adminState) holdLocked(id, domain, tenant, campaign, site string) *adminRule {
	for _, r := range a.holds {
		if len(r.IDs) > 0 {
			if _, ok := slices.BinarySearch(r.IDs, id); !ok || (r.Selector.Tenant != "" && r.Selector.Tenant != tenant) {
				continue
			}
			return r
		}
		if r.Selector.match(domain, tenant, campaign, site) {
			return r
		}
	}
	return nil
}

// Hold holds the mail sel matches, or with ids the mail of those messages
// (sel then only narrows them to its Tenant), until released.
func (l *Loop) Hold(id, origin string, sel Selector, ids []string, reason string) AdminRule {
	r := &adminRule{AdminRule: AdminRule{ID: id, Origin: validOrigin(origin), Selector: sel.Normalize(),
		Reason: reason, Created: l.clock.Now()}}
	if len(ids) > 0 {
		r.IDs = slices.Clone(ids)
		slices.Sort(r.IDs)
		r.IDs = slices.Compact(r.IDs)
	}
	l.storeRule(ruleHold, &r.AdminRule)
	l.admin.mu.Lock()
	l.addHoldLocked(r)
	snap := r.snapshot()
	l.admin.mu.Unlock()
	return snap
}

// addHoldLocked puts a hold in force.
func (l *Loop) addHoldLocked(r *adminRule) {
	if l.admin.holds == nil {
		l.admin.holds = make(map[string]*adminRule)
	}
	l.admin.holds[r.ID] = r
	l.admin.countLocked()
}

// Release ends the hold with this rule id: the mail it held is due now.
// False for an unknown id.
func (l *Loop) Release(id string) (AdminRule, bool) {
	l.admin.mu.Lock()
	r, ok := l.admin.holds[id]
	if !ok {
		l.admin.mu.Unlock()
		return AdminRule{}, false
	}
	delete(l.admin.holds, id)
	l.admin.countLocked()
	r.ended = true
	snap := r.snapshot()
	held := r.held
	r.held = nil
	l.admin.mu.Unlock()
	l.unstoreRule(ruleHold, id)
	l.release(held)
	return snap, true
}

// ReleaseMessages takes message ids out of the holds that name them (a
// hold left with none ends); their held mail is due now. It returns the
// ids some hold named; mail held by a hold by selector stays held.
func (l *Loop) ReleaseMessages(ids []string, tenant string) []string {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	found := map[string]bool{}
	var held []*workItem
	var changed []AdminRule
	var ended []string
	l.admin.mu.Lock()
	for hid, r := range l.admin.holds {
		if len(r.IDs) == 0 || tenant != "" && r.Selector.Tenant != tenant {
			continue
		}
		kept := r.IDs[:0:0]
		for _, id := range r.IDs {
			if want[id] {
				found[id] = true
				continue
			}
			kept = append(kept, id)
		}
		if len(kept) == len(r.IDs) {
			continue
		}
		r.IDs = kept
		stay := r.held[:0:0]
		for _, it := range r.held {
			if want[it.ms.id] {
				held = append(held, it)
			} else {
				stay = append(stay, it)
			}
		}
		r.held = stay
		if len(kept) == 0 {
			delete(l.admin.holds, hid)
			r.ended = true
			held = append(held, r.held...)
			r.held = nil
			ended = append(ended, hid)
			continue
		}
		changed = append(changed, r.AdminRule)
	}
	l.admin.countLocked()
	l.admin.mu.Unlock()
	for _, id := range ended {
		l.unstoreRule(ruleHold, id)
	}
	for i := range changed {
		l.storeRule(ruleHold, &changed[i])
	}
	l.release(held)
	out := make([]string, 0, len(found))
	for _, id := range ids {
		if found[id] {
			out = append(out, id)
			delete(found, id)
		}
	}
	return out
}

// Holds lists the holds in force, oldest first.
func (l *Loop) Holds() []AdminRule {
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	l.pruneHeldLocked()
	out := make([]AdminRule, 0, len(l.admin.holds))
	for _, r := range l.admin.holds {
		out = append(out, r.snapshot())
	}
	sortRules(out)
	return out
}

// HeldDepth counts the work items that suspensions and holds keep from
// delivery now (the "suspended" queue of the console's overview); cheap:
// no walk of the messages.
func (l *Loop) HeldDepth() int {
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	n := 0
	for _, r := range l.admin.suspends {
		n += len(r.held)
	}
	for _, r := range l.admin.holds {
		n += len(r.held)
	}
	return n
}
