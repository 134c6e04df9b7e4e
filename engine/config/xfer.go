package config

// Xfer is [xfer]: how the nodes hand queued mail to each other (gannet
// xfer, engine/handover). With a secret, the sending node logs in to the
// target (AUTH as handover.User, over verified TLS unless
// AllowInsecureAuth) and the handover carries the message's metadata in a
// field the target verifies with the same secret; without one, the target
// treats the mail as new mail from a relay host.
type Xfer struct {
	// Secret (or the first line of SecretFile) is shared by the nodes.
	Secret     string `toml:"secret" secret:"true"`
	SecretFile string `toml:"secret_file"`
	// AllowInsecureAuth lets the sending node log in over a connection
	// without TLS or whose certificate was not verified.
	AllowInsecureAuth bool `toml:"allow_insecure_auth"`

	fromFile string // what SecretFile held when the configuration was loaded
}

// Key returns the secret in force; "" without one.
func (x *Xfer) Key() string {
	if x.Secret != "" {
		return x.Secret
	}
	return x.fromFile
}

// HasLogins reports whether any client may log in (AUTH): [[smtp_user]]
// accounts, or other nodes with [xfer] secret. Without, the listeners
// offer no AUTH (unless a policy script's smtp_server_auth answers).
func (c *Config) HasLogins() bool { return len(c.SMTPUsers) > 0 || c.Xfer.Key() != "" }

// xferMinSecret is the least length of a secret: a short one could be
// guessed from a MAC or a login attempt offline.
const xferMinSecret = 16

// checkXfer checks [xfer] and reads its secret_file.
func (c *Config) checkXfer(ck *checker) {
	x := &c.Xfer
	p := func(k string) []string { return at("xfer", k) }
	if x.Secret != "" && x.SecretFile != "" {
		ck.add(p("secret_file"), "set secret or secret_file, not both")
	}
	x.fromFile = ""
	if x.SecretFile != "" && x.Secret == "" {
		x.fromFile = readFirstLine(ck, p("secret_file"), x.SecretFile, "the secret")
	}
	if k := x.Key(); k != "" && len(k) < xferMinSecret {
		ck.add(p("secret"), "is %d characters long; want at least %d (e.g. `openssl rand -hex 32`)", len(k), xferMinSecret)
	}
}
