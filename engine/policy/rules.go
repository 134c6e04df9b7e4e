package policy

import (
	"cmp"
	"net/url"
	"strings"

	"gannet/engine/config"
	"gannet/engine/dkim"
	"gannet/mailaddr"
	"gannet/msgheader"
)

// Rules is the message policy the configuration file states:
//
//  1. [meta]: the tenant_header, campaign_header and priority_header
//     fields are read when the client is trusted (a priority_header of
//     "transactional" is priority 1) and removed when strip_meta_headers
//     is set, trusted or not, so they never reach a recipient;
//  2. the tenant, campaign and priority are settled: what the client is
//     bound to or the API request names comes first, then the headers;
//  3. with add_missing_headers, a message without Date or Message-ID gets
//     them (RFC 5322 §3.6.1: Date is required; §3.6.4: Message-ID should
//     be present), "<id@hostname>" — the queue id is unique on this host;
//  4. bulk mail (a campaign is set) of a [[tenant]] with list_unsubscribe
//     gets List-Unsubscribe, the template with "{id}" replaced, and
//     List-Unsubscribe-Post for an https URI (RFC 8058), unless the sender
//     gave a List-Unsubscribe of its own;
//  5. the DKIM signing domains follow [[tenant]] dkim_domains (see
//     signingDomains).
//
// Added fields go at the end of the header section, in the order Date,
// Message-ID, List-Unsubscribe, List-Unsubscribe-Post. A Rules is built
// once per configuration and never changed: safe for concurrent use.
type Rules struct {
	cfg *config.Config
	// metaNames are the [meta] field names: tenant_header,
	// campaign_header, priority_header ("" for none).
	metaNames [3]string
}

// NewRules returns the policy cfg states. cfg must not change afterwards
// (a reload builds a new Rules from the new configuration).
func NewRules(cfg *config.Config) *Rules {
	mc := &cfg.Meta
	return &Rules{cfg: cfg, metaNames: [3]string{mc.TenantHeader, mc.CampaignHeader, mc.PriorityHeader}}
}

// routing is the routing metadata read from [meta] header fields.
type routing struct {
	tenant, campaign string
	priority         int
}

// maxStripOnStack is how many meta fields Decide tracks without
// allocating: one of each kind and one more.
const maxStripOnStack = 4

// dateLayout is RFC 5322 §3.3 date-time.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// Decide applies the rules to m. It never fails.
func (r *Rules) Decide(m Message) (Decision, error) {
	var (
		meta     routing
		has      struct{ date, messageID, listUnsubscribe bool }
		from     []byte // the first From field the message keeps
		stripBuf [maxStripOnStack]Span
	)
	strip := stripBuf[:0]
	s := msgheader.NewScanner(m.Body)
	for s.Next() {
		f := s.Field()
		if r.readMeta(&f, m.Trusted, &meta) && r.cfg.Meta.StripMetaHeaders {
			strip = append(strip, SpanOf(f))
			continue // not in the final message: it neither counts as present nor is signed
		}
		switch {
		case f.Is("Date"):
			has.date = true
		case f.Is("Message-ID"):
			has.messageID = true
		case f.Is("List-Unsubscribe"):
			has.listUnsubscribe = true
		case f.Is("From") && from == nil:
			from = f.Raw
		}
	}

	d := Decision{
		Tenant:   cmp.Or(m.Tenant, meta.tenant),
		Campaign: cmp.Or(m.Campaign, meta.campaign),
		Priority: max(m.Priority, meta.priority),
	}
	tenant := r.cfg.Tenant(d.Tenant)
	add := addedFields{
		date:      r.cfg.Meta.AddMissingHeaders && !has.date,
		messageID: r.cfg.Meta.AddMissingHeaders && !has.messageID,
	}
	if d.Campaign != "" && tenant != nil && tenant.ListUnsubscribe != "" && !has.listUnsubscribe {
		add.listUnsubscribe = tenant.ListUnsubscribe
	}
	if n := len(strip) + add.count(); n > 0 {
		d.Edits = make([]HeaderEdit, 0, n)
		for _, sp := range strip {
			d.Edits = append(d.Edits, HeaderEdit{Kind: Remove, Field: sp})
		}
		d.Edits = add.appendEdits(d.Edits, &m)
	}
	d.DKIMDomains, d.Warnings = r.signingDomains(from, tenant)
	return d, nil
}

// readMeta reads f into meta when it is one of the [meta] header fields
// and the client is trusted; it reports whether f is one of them.
func (r *Rules) readMeta(f *msgheader.Field, trusted bool, meta *routing) bool {
	found := false
	for i := range r.metaNames {
		if name := r.metaNames[i]; name == "" || !f.Is(name) {
			continue
		}
		found = true
		if !trusted {
			continue
		}
		switch v := f.Unfolded(); i {
		case 0:
			meta.tenant = v
		case 1:
			meta.campaign = v
		case 2:
			if strings.EqualFold(v, "transactional") {
				meta.priority = 1
			}
		}
	}
	return found
}

// addedFields are the fields a message lacks and gets.
type addedFields struct {
	date, messageID bool
	listUnsubscribe string // the tenant's URI template; "" for none
}

// count returns how many fields are added: List-Unsubscribe may come with
// List-Unsubscribe-Post.
func (a addedFields) count() int {
	n := 0
	if a.date {
		n++
	}
	if a.messageID {
		n++
	}
	if a.listUnsubscribe != "" {
		n += 2
	}
	return n
}

// appendEdits appends the Add edits of the fields, their values built in
// one allocation.
func (a addedFields) appendEdits(edits []HeaderEdit, m *Message) []HeaderEdit {
	var b strings.Builder
	b.Grow(len(dateLayout) + len(m.ID) + len(m.Hostname) + len(a.listUnsubscribe) + 16)
	var ends [3]int // where each value ends in b
	if a.date {
		var scratch [len(dateLayout) + 8]byte
		b.Write(m.Time.AppendFormat(scratch[:0], dateLayout))
	}
	ends[0] = b.Len()
	if a.messageID {
		// RFC 5322 §3.6.4: msg-id = "<" id-left "@" id-right ">".
		b.WriteByte('<')
		b.WriteString(m.ID)
		b.WriteByte('@')
		b.WriteString(m.Hostname)
		b.WriteByte('>')
	}
	ends[1] = b.Len()
	if a.listUnsubscribe != "" {
		b.WriteByte('<')
		writeTemplate(&b, a.listUnsubscribe, m.ID)
		b.WriteByte('>')
	}
	ends[2] = b.Len()

	values := b.String()
	if a.date {
		edits = append(edits, HeaderEdit{Kind: Add, Name: "Date", Value: values[:ends[0]]})
	}
	if a.messageID {
		edits = append(edits, HeaderEdit{Kind: Add, Name: "Message-ID", Value: values[ends[0]:ends[1]]})
	}
	if a.listUnsubscribe != "" {
		uri := values[ends[1]:ends[2]]
		edits = append(edits, HeaderEdit{Kind: Add, Name: "List-Unsubscribe", Value: uri})
		// RFC 8058 §3.1: one-click unsubscription needs an HTTPS URI; the
		// POST body a receiver sends is exactly this value.
		if len(uri) > len("<https:") && strings.EqualFold(uri[1:len("<https:")], "https:") {
			edits = append(edits, HeaderEdit{Kind: Add, Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"})
		}
	}
	return edits
}

// writeTemplate writes a list_unsubscribe template with every "{id}"
// replaced by id, escaped for a URI path.
func writeTemplate(b *strings.Builder, template, id string) {
	for {
		before, after, found := strings.Cut(template, "{id}")
		b.WriteString(before)
		if !found {
			return
		}
		b.WriteString(url.PathEscape(id))
		template = after
	}
}

// signingDomains is the DKIM rule documented at [[tenant]] dkim_domains in
// default.toml. from is the message's first From field (nil for none).
//
//   - Mail of no [[tenant]] (a trusted client naming none, or naming one
//     that is not configured) is signed with the key of its header From
//     domain (RFC 5322 §3.6.2: the domain DMARC aligns DKIM with).
//   - Mail of a [[tenant]] (bound by its API key or SMTP AUTH account, or
//     named by a trusted client) is signed with the key of its From domain
//     only when that domain is one of the tenant's own (dkim_domain,
//     dkim_domains) — never with another tenant's key, nor with that of a
//     domain no tenant lists, whatever the From field says — and with the
//     key of its dkim_domain (an ESP signing for itself and for its
//     customer gives both).
//
// Only domains with a [[dkim]] key sign; a From domain is signed for
// exactly (a parent domain's key does not sign "news.example.com" mail). A
// From domain that has a key and is refused for the tenant gives a
// warning naming the tenant and the domain.
func (r *Rules) signingDomains(from []byte, tenant *config.Tenant) ([]string, []Warning) {
	if len(r.cfg.DKIM) == 0 {
		return nil, nil
	}
	fromDomain := ""
	if from != nil {
		fromDomain = dkim.HeaderFromDomain(from)
	}
	var warnings []Warning
	tenantDomain := ""
	if tenant != nil {
		tenantDomain = mailaddr.CanonicalDomain(tenant.DKIMDomain)
		if fromDomain != "" && !tenant.HasDomain(fromDomain) {
			if r.cfg.DKIMKey(fromDomain) != nil {
				warnings = append(warnings, r.foreignFrom(tenant, fromDomain))
			}
			fromDomain = ""
		}
	}
	var domains []string
	if fromDomain != "" && r.cfg.DKIMKey(fromDomain) != nil {
		domains = append(domains, fromDomain)
	}
	if tenantDomain != "" && tenantDomain != fromDomain && r.cfg.DKIMKey(tenantDomain) != nil {
		domains = append(domains, tenantDomain)
	}
	return domains, warnings
}

// foreignFrom says why a tenant's message is not signed with the key of
// its From domain: the domain is another tenant's, or no tenant's.
func (r *Rules) foreignFrom(tenant *config.Tenant, domain string) Warning {
	if owner := r.cfg.DomainTenant(domain); owner != nil {
		return Warning{Text: "DKIM: not signing From domain of another tenant",
			Args: []any{"tenant", tenant.Name, "domain", domain, "owner", owner.Name}}
	}
	return Warning{Text: "DKIM: not signing From domain that is not the tenant's (dkim_domain, dkim_domains)",
		Args: []any{"tenant", tenant.Name, "domain", domain}}
}
