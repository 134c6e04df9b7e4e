package delivery

import (
	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/mailaddr"
	"gannet/queue"
	"gannet/smtpwire"
)

// EraseReply is the reply recorded (AdminDelete) for a recipient an
// erasure request removed.
var EraseReply = smtpwire.Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"Administrator deleted: erased on request"}}

// Erase removes an address from the queue, for an erasure request (GDPR
// art. 17): every pending recipient of a message from the address, and
// every pending recipient that is the address, is settled without a
// bounce, as DeleteMessages settles them. A message from the address thus
// leaves the queue whole; a message to the address and to others loses
// that recipient only, and goes on to the others (it leaves the spool
// when its last recipient is settled). Addresses are compared folded
// (mailaddr.Fold).
//
// The AdminDelete records it writes do not name the address: wherever a
// record would (as sender or recipient), it holds mask instead, which the
// caller makes from a hash of the address and its domain, so that the
// records still count against their destination. It returns the messages
// touched and the recipients settled.
func (l *Loop) Erase(addr, mask string) ActionResult {
	l.waitLoaded()
	addr = mailaddr.Fold(addr)
	now := l.clock.Now()
	var res ActionResult
	for _, ms := range l.snapshotMsgs() {
		ms.mu.Lock()
		if ms.corrupt {
			ms.mu.Unlock()
			continue
		}
		var scratch queue.Message
		m := ms.view(l.packer, &scratch)
		packed := ms.isPacked()
		from := mailaddr.Fold(m.From) == addr
		var vs []verdict
		for i := range m.Recipients {
			rc := &m.Recipients[i]
			if rc.State == queue.Pending && (from || mailaddr.Fold(rc.Addr) == addr) {
				vs = append(vs, verdict{kind: kindAdminDelete, rcpt: i, reply: EraseReply,
					dest: outbound.Path{Domain: mailaddr.Domain(rc.Addr), Site: l.relay}})
			}
		}
		if len(vs) == 0 {
			ms.mu.Unlock()
			continue
		}
		m = ms.msg(l.packer)
		settled := l.settle(ms, m, vs, nil, now)
		if packed && !settled.removed {
			ms.pack(l.packer)
		}
		ms.mu.Unlock()
		for i := range settled.records {
			maskRecord(&settled.records[i], addr, mask)
		}
		l.publish(&settled)
		res.Messages++
		res.Recipients += len(vs)
	}
	if res.Messages > 0 {
		l.admin.mu.Lock()
		l.pruneHeldLocked() // what was settled is held no more
		l.admin.mu.Unlock()
	}
	return res
}

// maskRecord puts mask wherever r names addr (folded).
func maskRecord(r *logrec.Record, addr, mask string) {
	if mailaddr.Fold(r.Sender) == addr {
		r.Sender = mask
	}
	if mailaddr.Fold(r.Recipient) == addr {
		r.Recipient = mask
	}
}
