package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"gannet/engine/admin"
	"gannet/engine/logrec"
	"gannet/engine/suppress"
	"gannet/mailaddr"
	"gannet/queue"
)

// Erase carries out an erasure request (GDPR art. 17; gannet erase,
// POST /api/admin/erase/v1) for address:
//
//  1. unless told not to (suppressToo false), the address goes on the
//     global suppression list (source "erase") first, so that no tenant
//     mails it again, from now on — the one place the address is kept, as
//     the request requires;
//  2. the queue: a message from the address leaves it whole; a message to
//     the address and others loses that recipient only and still goes to
//     the others (delivery.Loop.Erase). Their AdminDelete records name
//     the address by its hash (addressMask), never in clear;
//  3. the dead letters from or to the address are purged, whole;
//  4. the retained log files are searched for it (logrec.FilesMentioning):
//     the answer names those that still hold it, for the operator to deal
//     with (Gannet does not rewrite its logs);
//  5. an AdminErase record notes the request with the address hashed.
//
// Bytes of a removed message stay in its spool segment until the segment
// is compacted or deleted (queue: compaction), as for any removed message.
func (e *Engine) Erase(address string, suppressToo bool, who string) (admin.EraseResponse, error) {
	var res admin.EraseResponse
	addr := mailaddr.Fold(address)
	if local, domain := mailaddr.Split(addr); local == "" || domain == "" || strings.ContainsAny(addr, " \t\r\n") {
		return res, fmt.Errorf("%q: %w", address, suppress.ErrBadAddress)
	}
	res.AddressSHA256 = addressHash(addr)
	res.LogFilesMentioned = []string{}

	// Suppressed first, so that no new mail to it comes in meanwhile.
	if suppressToo {
		if err := e.suppress.Add("", addr, "erasure request", suppress.SourceErase); err != nil {
			return res, fmt.Errorf("suppression list: %w", err)
		}
		res.Suppressed = true
	}
	q := e.delivery.Erase(addr, addressMask(res.AddressSHA256, addr))
	res.QueuedMessages, res.QueuedRecipients = q.Messages, q.Recipients

	var dead []string
	err := e.spool.ScanDead(func(m *queue.Message) error {
		if mentions(m, addr) {
			dead = append(dead, m.ID)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("dead letters: %w", err)
	}
	for _, id := range dead {
		if err := e.spool.PurgeDead(id); err != nil && !errors.Is(err, queue.ErrNotFound) {
			return res, fmt.Errorf("dead letter %s: %w", id, err)
		}
		res.DeadLetters++
	}

	if err := e.records.Flush(); err != nil { // the records of a moment ago count too
		e.log.Warn("erasure: flushing the log records", "err", err)
	}
	files, err := logrec.FilesMentioning(e.cfg.Log.Path, addr)
	if err != nil {
		return res, fmt.Errorf("searching the log files: %w", err)
	}
	res.LogFilesMentioned = append(res.LogFilesMentioned, files...)

	now := e.now()
	e.records.Write(&logrec.Record{
		Type:      logrec.AdminErase,
		Recipient: "sha256:" + res.AddressSHA256,
		Response: logrec.Response{Content: fmt.Sprintf("erased on request: %d queued messages (%d recipients), %d dead letters; suppressed: %t; log files mentioning it: %d",
			res.QueuedMessages, res.QueuedRecipients, res.DeadLetters, res.Suppressed, len(res.LogFilesMentioned))},
		Timestamp: now,
		Created:   now,
	})
	e.log.Info("erasure request", "by", who, "address_sha256", res.AddressSHA256,
		"queued_messages", res.QueuedMessages, "queued_recipients", res.QueuedRecipients,
		"dead_letters", res.DeadLetters, "suppressed", res.Suppressed, "log_files", len(res.LogFilesMentioned))
	return res, nil
}

// addressHash is the hex SHA-256 of addr folded (mailaddr.Fold).
func addressHash(addr string) string {
	sum := sha256.Sum256([]byte(mailaddr.Fold(addr)))
	return hex.EncodeToString(sum[:])
}

// addressMask is what records hold in place of an erased address:
// "sha256:HEX@DOMAIN", the hash of the whole (folded) address with its
// domain kept, so that the records still count against their destination
// (observe.go reads the domain of a record's recipient).
func addressMask(hexSum, addr string) string {
	return "sha256:" + hexSum + "@" + mailaddr.Domain(addr)
}

// mentions reports whether m is from or to addr (folded).
func mentions(m *queue.Message, addr string) bool {
	if mailaddr.Fold(m.From) == addr {
		return true
	}
	for i := range m.Recipients {
		if mailaddr.Fold(m.Recipients[i].Addr) == addr {
			return true
		}
	}
	return false
}
