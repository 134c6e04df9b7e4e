// Package shaping decides how hard Gannet may push each destination: the
// configured limits of a path (egress source × MX site), adaptive back-off
// when the site pushes back, and automation rules that react to what a
// site says.
//
// # Limits
//
// A path is an outbound.Path: its state is kept per egress source and
// site (a resolver.SiteKey), and its destination domain picks the
// configuration. Config.Base gives the configured limits of a destination
// domain from its MX host names (SiteKey.MXHosts), so that provider tables
// (MX suffix ".google.com") apply to every domain hosted there. The path
// to the relay_to smarthost has no MX host names: its "host:port" meets no
// MX suffix, in tables or in rules. Shaper.Limits returns the effective
// limits of a path — what the outbound pools and the delivery workers
// obey — and is called on every transaction, so changes apply at once.
//
// # Adaptive back-off (AIMD)
//
// A transaction whose server reply is a throttling reply — 421 (RFC 5321
// §3.8, the server is closing), 451, any 4.7.x (RFC 3463 §3.8, security or
// policy status, where providers put rate limits), or a reply matching one
// of Backoff.Throttle — is a congestion signal, like a lost packet to TCP:
// the path's message rate and connection limit are multiplied by
// Backoff.Factor (0.7). At most one cut happens per RecoverInterval, since
// the transactions in flight were started at the old rate. While
// transactions succeed, every RecoverInterval adds RecoverStep (10%) of
// the configured rate and one connection, until the configured limits are
// reached again and the path is back to normal. When the configured rate
// is unlimited, the first cut starts from the rate measured over the last
// seconds, and the path returns to unlimited once it has climbed back to
// that rate. Replies Gannet made itself (a lost connection, a TLS policy
// failure) are never throttling: outbound.Result.Local marks them; nor is
// greylisting (Greylisting, greylist.go), which asks for a retry of the
// recipient, not a slower site.
// Each change of a cut is told to Config.OnCut, so that a cluster shares
// it, and ApplyCut puts another node's in force (sharedcut.go).
//
// # Automation rules
//
// A Rule matches destinations by domain or MX suffix and replies by a
// regular expression on "CODE ENHANCED text". Its action lasts Duration:
// Suspend stops delivery to the path (Gate tells the delivery loop to put
// the items back in the scheduled queue until then, without counting an
// attempt), Bounce bounces the path's queued items with the matching
// reply, Rate caps the path's message rate, and BackoffMode puts the
// path's site in backoff mode. These are the counterparts of KumoMTA's
// automation actions.
//
// # Backoff mode
//
// A state of a site rather than a rate (PowerMTA's backoff mode): entered
// on a BackoffMode rule or when the site's deferral rate over a sliding
// window passes a threshold, it lowers the site's rate, makes deferred
// mail wait a fixed time, and ends after a time or a number of deliveries.
// Config.OnBackoff hears each entry and end (records, persistence, the
// cluster); see backoffmode.go.
//
// # Self-tuning
//
// With Tuning.Enabled, a site's message rate (tune.go) and connection
// count (tuneconns.go) are searched for, one step per window, within the
// configured limits: climbing while the site accepts, stepping back when
// it defers mail, refuses connections or slows down. What is learned is
// told to Config.OnTune and put back by RestoreTune after a restart.
//
// A Shaper is safe for concurrent use. Time comes from Config.Now.
package shaping
