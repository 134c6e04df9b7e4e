// Package policy decides what becomes of a message at reception, before it
// is signed and spooled: its tenant, campaign and priority (which queue it
// waits in and how soon it goes), the edits to its header section, and the
// domains whose DKIM keys sign it. The engine's store path (engine.take)
// asks a policy once per message, for SMTP and HTTP alike, and carries the
// decision out: it applies the header edits (AppendEdited), signs with the
// keys it holds, prepends the Received field and spools the result.
//
// The package is pure: configuration in, decisions out. It does no I/O,
// keeps no state between messages and holds no lock, so a policy may be
// asked from many goroutines at once; a configuration reload builds a new
// policy and the engine swaps it whole.
//
// The engine declares the interface it needs of a policy (one method,
// Decide(Message) (Decision, error)); this package holds what crosses it
// — Message, Decision, HeaderEdit — and Rules, the policy the configuration
// file states ([meta], [[tenant]], [[dkim]]). A scripted policy (the Lua
// hooks of shared/docs/policy.md: smtp_message_received calling
// kumo.set_tenant, kumo.set_campaign, kumo.set_queue_priority,
// kumo.add_header, kumo.remove_header and kumo.sign_dkim) is a second
// implementation of the same method, built on the same types.
//
// Header edits are a general list (HeaderEdit): add a field at the end of
// the header section or at its top, remove every field of a name or the one
// field at a byte range, replace a field. AppendEdited builds the edited
// message in one pass over the header section, copying each byte of the
// received message once, into a buffer the caller sizes with EditedLen.
package policy
