package metrics

import (
	"bytes"
	"strconv"
	"strings"
)

// KumoMTA compatibility ([metrics] compat = "kumomta"): operators moving
// from KumoMTA keep dashboards and alerts keyed on its metric names
// (https://docs.kumomta.com/reference/metrics/kumod/). With compat on,
// /metrics also carries, after Gannet's own families, the KumoMTA
// families Gannet has an equivalent of, each derived at scrape time from
// the Gannet series of the same scrape (so the two never disagree). The
// mapping is the table below; docs/contract.md shows it to operators.
//
// KumoMTA labels outbound series by "service" = "smtp_client:<queue>";
// Gannet's ready queues are its MX sites, so service is
// "smtp_client:<site>" (the "other" site of max_destination_labels too).
// Inbound series carry service="esmtp_listener", as KumoMTA's do.

// CompatKumoMTA is the [metrics] compat value that turns the KumoMTA names on.
const CompatKumoMTA = "kumomta"

// kumoSource is one Gannet family (or one labelled part of it) that feeds a
// KumoMTA family.
type kumoSource struct {
	from   string // Gannet family; for a histogram its base name
	where  string // a label pair the Gannet sample must carry (`direction="in"`), or ""
	label  string // the Gannet label whose value becomes the KumoMTA label, or ""
	prefix string // put before that value ("smtp_client:")
	fixed  string // otherwise a fixed KumoMTA label pair (`service="esmtp_listener"`), or ""
}

// kumoFamily is one KumoMTA family and where its samples come from.
type kumoFamily struct {
	name, typ, help string
	as              string // the KumoMTA label that kumoSource.label becomes
	sum             bool   // one unlabelled sample: the sum of every source sample
	sources         []kumoSource
}

func kumoFamilies() []kumoFamily {
	site := func(from string) kumoSource {
		return kumoSource{from: from, label: "site", prefix: "smtp_client:"}
	}
	return []kumoFamily{
		{name: "total_messages_received", typ: "counter", as: "service",
			help:    "KumoMTA name for gannet_messages_received_total (service: the listener).",
			sources: []kumoSource{{from: "gannet_messages_received_total", label: "listener"}}},
		{name: "total_messages_delivered", typ: "counter", as: "service",
			help:    "KumoMTA name for gannet_site_messages_delivered_total.",
			sources: []kumoSource{site("gannet_site_messages_delivered_total")}},
		{name: "total_messages_transfail", typ: "counter", as: "service",
			help:    "KumoMTA name for gannet_site_messages_transient_failures_total.",
			sources: []kumoSource{site("gannet_site_messages_transient_failures_total")}},
		{name: "total_messages_fail", typ: "counter", as: "service",
			help:    "KumoMTA name for gannet_site_messages_bounced_total.",
			sources: []kumoSource{site("gannet_site_messages_bounced_total")}},
		{name: "connection_count", typ: "gauge", as: "service",
			help: "KumoMTA name for gannet_site_connections (smtp_client:SITE) and gannet_connections{direction=\"in\"} (esmtp_listener).",
			sources: []kumoSource{site("gannet_site_connections"),
				{from: "gannet_connections", where: `direction="in"`, fixed: `service="esmtp_listener"`}}},
		{name: "total_connection_count", typ: "counter",
			help: "KumoMTA name for gannet_connections_opened_total.",
			sources: []kumoSource{
				{from: "gannet_connections_opened_total", where: `direction="in"`, fixed: `service="esmtp_listener"`},
				{from: "gannet_connections_opened_total", where: `direction="out"`, fixed: `service="smtp_client"`}}},
		{name: "ready_count", typ: "gauge", as: "service",
			help:    "KumoMTA name for gannet_site_queue_depth.",
			sources: []kumoSource{site("gannet_site_queue_depth")}},
		{name: "scheduled_count", typ: "gauge", as: "queue",
			help:    "KumoMTA name for gannet_domain_queue_depth (queue: the domain).",
			sources: []kumoSource{{from: "gannet_domain_queue_depth", label: "domain"}}},
		{name: "scheduled_by_domain", typ: "gauge", as: "domain",
			help:    "KumoMTA name for gannet_domain_queue_depth.",
			sources: []kumoSource{{from: "gannet_domain_queue_depth", label: "domain"}}},
		{name: "scheduled_count_total", typ: "gauge",
			help:    "KumoMTA name for gannet_queue_depth{queue=\"scheduled\"}.",
			sources: []kumoSource{{from: "gannet_queue_depth", where: `queue="scheduled"`}}},
		{name: "message_count", typ: "gauge", sum: true,
			help: "KumoMTA name for the messages Gannet holds: gannet_queue_depth scheduled plus ready.",
			sources: []kumoSource{{from: "gannet_queue_depth", where: `queue="scheduled"`},
				{from: "gannet_queue_depth", where: `queue="ready"`}}},
		{name: "smtp_server_rejections", typ: "counter",
			help:    "KumoMTA name for gannet_smtp_errors_total{direction=\"in\"}.",
			sources: []kumoSource{{from: "gannet_smtp_errors_total", where: `direction="in"`, fixed: `service="esmtp_listener"`}}},
		{name: "deliver_message_latency_rollup", typ: "histogram",
			help:    "KumoMTA name for gannet_delivery_latency_seconds (Gannet measures reception to delivery, not one delivery call).",
			sources: []kumoSource{{from: "gannet_delivery_latency_seconds", fixed: `service="smtp_client"`}}},
		{name: "memory_usage", typ: "gauge",
			help:    "KumoMTA name for process_resident_memory_bytes.",
			sources: []kumoSource{{from: "process_resident_memory_bytes"}}},
	}
}

// kumo is the mapping, built once.
var kumo = kumoFamilies()

// appendKumoCompat appends to out the KumoMTA families derived from the
// samples in text (Gannet's own exposition of this scrape).
func appendKumoCompat(out, text []byte) []byte {
	type sample struct {
		name   string // sample name: the family, or its _bucket/_sum/_count
		labels string // inside the braces, as written
		value  string
	}
	byName := map[string][]sample{}
	for rest := text; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		sp := bytes.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series, value := string(line[:sp]), string(line[sp+1:])
		name, labels := series, ""
		if i := strings.IndexByte(series, '{'); i >= 0 && strings.HasSuffix(series, "}") {
			name, labels = series[:i], series[i+1:len(series)-1]
		}
		byName[name] = append(byName[name], sample{name, labels, value})
	}
	for _, f := range kumo {
		var lines []byte
		var total float64
		found := false
		for _, src := range f.sources {
			names := []string{src.from}
			if f.typ == "histogram" {
				names = []string{src.from + "_bucket", src.from + "_sum", src.from + "_count"}
			}
			for _, n := range names {
				for _, s := range byName[n] {
					pairs := splitLabels(s.labels)
					if src.where != "" && !hasPair(pairs, src.where) {
						continue
					}
					found = true
					if f.sum {
						if v, err := strconv.ParseFloat(s.value, 64); err == nil {
							total += v
						}
						continue
					}
					var kl []string
					switch {
					case src.label != "":
						v, ok := labelValue(pairs, src.label)
						if !ok {
							continue
						}
						kl = append(kl, f.as+`="`+src.prefix+v+`"`)
					case src.fixed != "":
						kl = append(kl, src.fixed)
					}
					if f.typ == "histogram" {
						if le, ok := labelValue(pairs, "le"); ok {
							kl = append(kl, `le="`+le+`"`)
						}
					}
					lines = append(lines, f.name...)
					lines = append(lines, strings.TrimPrefix(n, src.from)...)
					if len(kl) > 0 {
						lines = append(lines, '{')
						lines = append(lines, strings.Join(kl, ",")...)
						lines = append(lines, '}')
					}
					lines = append(lines, ' ')
					lines = append(lines, s.value...)
					lines = append(lines, '\n')
				}
			}
		}
		if !found {
			continue
		}
		out = appendHeader(out, f.name, f.help, f.typ)
		if f.sum {
			out = append(out, f.name...)
			out = append(out, ' ')
			out = strconv.AppendFloat(out, total, 'g', -1, 64)
			out = append(out, '\n')
			continue
		}
		out = append(out, lines...)
	}
	return out
}

// splitLabels splits the inside of a label set as written by the text
// format (`a="x",b="y\"z"`) into its pairs, each as written.
func splitLabels(s string) []string {
	var pairs []string
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return pairs
		}
		i := eq + 2
		for i < len(s) && s[i] != '"' {
			if s[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(s) {
			return pairs
		}
		pairs = append(pairs, s[:i+1])
		s = strings.TrimPrefix(s[i+1:], ",")
	}
	return pairs
}

func hasPair(pairs []string, p string) bool {
	for _, q := range pairs {
		if q == p {
			return true
		}
	}
	return false
}

// labelValue returns the value of label name in pairs, still escaped as
// the text format writes it (so it can be written again as it is).
func labelValue(pairs []string, name string) (string, bool) {
	for _, p := range pairs {
		if v, ok := strings.CutPrefix(p, name+`="`); ok {
			return strings.TrimSuffix(v, `"`), true
		}
	}
	return "", false
}
