// Package suppress keeps the suppression list: the addresses that mail
// must not be sent to, one list per tenant and one global list (tenant
// ""), whose entries apply to every tenant.
//
// An entry is added by a hard bounce (the engine, for the bounce classes
// that mean the address is bad), by an asynchronous bounce or a complaint
// (the feedback listener, through List.Add), by an operator (the admin API
// and `gannet suppress add|import`) or by an erasure request. Each records
// why (reason), by what (source) and when (created); with a ttl
// ([suppression] ttl) an entry stops counting ttl after it was created and
// is removed by the next sweep.
//
// Storage: the spool's Pebble index, keys "s/TENANT\x00ADDRESS" (the
// address folded by mailaddr.Fold), values encoded by encodeValue. Every
// lookup is answered from memory: Load reads the list once at start into
// a map from a 64-bit hash of (tenant, address) to the entry's creation
// time, about 20 bytes an entry (a million entries: ~20 MB); Pebble is
// read only for a hash shared by two entries, which at 64 bits does not
// happen in practice. So Suppressed, on the RCPT path, costs a hash and a
// map read (BenchmarkSuppressed) and never waits for the disk.
//
// Writes go to Pebble first and then to memory. An operator's add is
// synced; an automatic one (a bounce) is not: a crash may lose the last
// few, and the next bounce to the address adds it again. An import is
// synced once, at its end.
package suppress
