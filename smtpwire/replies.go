package smtpwire

// The standard replies of the server session and of Gannet's outside contract
// (docs contract.md, "SMTP"). Codes follow RFC 5321 §4.2.2, enhanced codes
// RFC 3463 and the registries of RFC 5248. They are shared values: do not
// modify them.
var (
	// ReplyOK is the generic success: RSET, NOOP, a message taken.
	ReplyOK = Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK"}}
	// ReplyMailOK accepts MAIL FROM (RFC 3463: X.1.0 other address status).
	ReplyMailOK = Reply{Code: 250, Enhanced: "2.1.0", Lines: []string{"Sender OK"}}
	// ReplyRcptOK accepts RCPT TO (X.1.5 destination address valid).
	ReplyRcptOK = Reply{Code: 250, Enhanced: "2.1.5", Lines: []string{"Recipient OK"}}
	// ReplyDataStart answers DATA (RFC 5321 §4.3.2; 354 carries no enhanced code).
	ReplyDataStart = Reply{Code: 354, Lines: []string{"End data with <CR><LF>.<CR><LF>"}}
	// ReplyAuthOK answers a successful AUTH (RFC 4954 §6).
	ReplyAuthOK = Reply{Code: 235, Enhanced: "2.7.0", Lines: []string{"Authentication successful"}}
	// ReplyVRFY answers VRFY without disclosing anything (RFC 5321 §3.5.3).
	ReplyVRFY = Reply{Code: 252, Enhanced: "2.5.0", Lines: []string{"Cannot VRFY user, but will accept message and attempt delivery"}}
	// ReplyHelp answers HELP (RFC 5321 §4.1.1.8).
	ReplyHelp = Reply{Code: 214, Enhanced: "2.0.0", Lines: []string{"Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH"}}
	// ReplyStartTLS answers STARTTLS before the handshake (RFC 3207 §4).
	ReplyStartTLS = Reply{Code: 220, Enhanced: "2.0.0", Lines: []string{"Ready to start TLS"}}

	// ReplyRelayDenied refuses a recipient the client may not relay to.
	ReplyRelayDenied = Reply{Code: 554, Enhanced: "5.7.1", Lines: []string{"Relay access denied"}}
	// ReplyAuthRequired refuses MAIL before AUTH (RFC 4954 §6).
	ReplyAuthRequired = Reply{Code: 530, Enhanced: "5.7.0", Lines: []string{"Authentication required"}}
	// ReplyAuthFailed refuses wrong credentials (RFC 4954 §6).
	ReplyAuthFailed = Reply{Code: 535, Enhanced: "5.7.8", Lines: []string{"Authentication credentials invalid"}}
	// ReplyAuthCancelled answers a client's "*" during AUTH (RFC 4954 §4).
	ReplyAuthCancelled = Reply{Code: 501, Enhanced: "5.0.0", Lines: []string{"Authentication cancelled"}}
	// ReplyAuthBadBase64 answers an AUTH response that is not base64 (RFC 4954 §4).
	ReplyAuthBadBase64 = Reply{Code: 501, Enhanced: "5.5.2", Lines: []string{"Invalid base64 data"}}
	// ReplyAuthBadData answers decoded AUTH data of the wrong shape.
	ReplyAuthBadData = Reply{Code: 501, Enhanced: "5.5.2", Lines: []string{"Invalid authentication data"}}
	// ReplyAuthMechanism refuses a mechanism that is not offered (RFC 4954 §6).
	ReplyAuthMechanism = Reply{Code: 504, Enhanced: "5.5.4", Lines: []string{"Unrecognized authentication type"}}
	// ReplyAuthNeedsTLS refuses AUTH before STARTTLS (RFC 4954 §6, 538 5.7.11).
	ReplyAuthNeedsTLS = Reply{Code: 538, Enhanced: "5.7.11", Lines: []string{"Encryption required for requested authentication mechanism"}}
	// ReplyAlreadyAuthenticated refuses a second AUTH (RFC 4954 §4).
	ReplyAlreadyAuthenticated = Reply{Code: 503, Enhanced: "5.5.1", Lines: []string{"Already authenticated"}}

	// ReplyTooBig refuses a message over the size limit, declared (RFC 1870 §6)
	// or counted.
	ReplyTooBig = Reply{Code: 552, Enhanced: "5.3.4", Lines: []string{"Message size exceeds fixed maximum message size"}}
	// ReplyTooManyRcpts refuses recipients past the limit (RFC 5321 §4.5.3.1.10).
	ReplyTooManyRcpts = Reply{Code: 452, Enhanced: "4.5.3", Lines: []string{"Too many recipients"}}
	// ReplyQueueFull refuses mail while the queue or the disk is full.
	ReplyQueueFull = Reply{Code: 452, Enhanced: "4.3.1", Lines: []string{"Insufficient system storage"}}
	// ReplyBareLF refuses a message with bare LF (or CR) line endings after its
	// end, when the listener's policy is BareLFReject.
	ReplyBareLF = Reply{Code: 550, Enhanced: "5.6.0", Lines: []string{"Message contains bare LF line endings, which are not allowed"}}

	// ReplySyntax refuses bad arguments (RFC 5321 §4.2.2: 501).
	ReplySyntax = Reply{Code: 501, Enhanced: "5.5.4", Lines: []string{"Syntax error in parameters or arguments"}}
	// ReplySyntaxPath refuses a malformed reverse- or forward-path.
	ReplySyntaxPath = Reply{Code: 501, Enhanced: "5.5.4", Lines: []string{"Syntax error in mailbox address"}}
	// ReplyUnknownCommand refuses a line that is no command (500 5.5.2).
	ReplyUnknownCommand = Reply{Code: 500, Enhanced: "5.5.2", Lines: []string{"Syntax error, command unrecognized"}}
	// ReplyNotImplemented refuses a known command that is switched off.
	ReplyNotImplemented = Reply{Code: 502, Enhanced: "5.5.1", Lines: []string{"Command not implemented"}}
	// ReplyLineTooLong refuses a command line over the limit (RFC 5321 §4.5.3.1.4).
	ReplyLineTooLong = Reply{Code: 500, Enhanced: "5.5.2", Lines: []string{"Line too long"}}
	// ReplyEightBit refuses 8-bit bytes in a command outside an SMTPUTF8 address.
	ReplyEightBit = Reply{Code: 500, Enhanced: "5.5.2", Lines: []string{"8-bit characters not allowed in commands"}}
	// ReplyBadParam refuses an unknown MAIL/RCPT parameter (RFC 5321 §4.1.1.11: 555).
	ReplyBadParam = Reply{Code: 555, Enhanced: "5.5.4", Lines: []string{"Unsupported MAIL FROM or RCPT TO parameter"}}
	// ReplyRequireTLSNeeded refuses MAIL … REQUIRETLS on a session without
	// TLS, or where REQUIRETLS is not offered (RFC 8689 §4.1, §5.7.10).
	ReplyRequireTLSNeeded = Reply{Code: 530, Enhanced: "5.7.10", Lines: []string{"REQUIRETLS is not offered on this session"}}
	// ReplyNeedSMTPUTF8 refuses a non-ASCII address in a transaction that did
	// not declare SMTPUTF8 (RFC 6531 §3.5).
	ReplyNeedSMTPUTF8 = Reply{Code: 553, Enhanced: "5.6.7", Lines: []string{"Must declare SMTPUTF8 to send non-ASCII addresses"}}

	// ReplyBadSequence refuses a command out of order (RFC 5321 §4.2.2: 503).
	ReplyBadSequence = Reply{Code: 503, Enhanced: "5.5.1", Lines: []string{"Bad sequence of commands"}}
	// ReplyNeedHello refuses MAIL, AUTH or STARTTLS before EHLO/HELO.
	ReplyNeedHello = Reply{Code: 503, Enhanced: "5.5.1", Lines: []string{"Send EHLO first"}}
	// ReplyNeedMail refuses RCPT, DATA or BDAT outside a transaction.
	ReplyNeedMail = Reply{Code: 503, Enhanced: "5.5.1", Lines: []string{"Need MAIL command"}}
	// ReplyNeedRcpt refuses DATA or BDAT without an accepted recipient
	// (RFC 2920 §3.1 allows 503 or 554 here).
	ReplyNeedRcpt = Reply{Code: 503, Enhanced: "5.5.1", Lines: []string{"No valid recipients"}}
	// ReplyNestedMail refuses MAIL inside a transaction.
	ReplyNestedMail = Reply{Code: 503, Enhanced: "5.5.1", Lines: []string{"Nested MAIL command"}}
	// ReplyDataBDATMix refuses DATA after BDAT in one transaction (RFC 3030 §3),
	// and DATA for a BODY=BINARYMIME transaction (RFC 3030 §3).
	ReplyDataBDATMix = Reply{Code: 503, Enhanced: "5.5.1", Lines: []string{"DATA not allowed in this transaction, use BDAT"}}
	// ReplyAlreadyTLS refuses STARTTLS inside TLS (RFC 3207 §4).
	ReplyAlreadyTLS = Reply{Code: 503, Enhanced: "5.5.1", Lines: []string{"TLS already active"}}
	// ReplyAuthInTransaction refuses AUTH during a mail transaction (RFC 4954 §4).
	ReplyAuthInTransaction = Reply{Code: 503, Enhanced: "5.5.1", Lines: []string{"AUTH not permitted during a mail transaction"}}

	// ReplyTimeout ends a session whose client was silent too long; the
	// session prefixes the host name.
	ReplyTimeout = Reply{Code: 421, Enhanced: "4.4.2", Lines: []string{"Error: timeout exceeded"}}
	// ReplyTooManyErrors ends a session after too many bad commands; the
	// session prefixes the host name. The contract asks for 4.4.2 here.
	ReplyTooManyErrors = Reply{Code: 421, Enhanced: "4.4.2", Lines: []string{"Error: too many errors"}}
)
