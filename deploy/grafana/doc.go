// Package grafana holds Gannet's Grafana dashboard (gannet.json), a file
// for operators to import, and the code its tests use to read it.
//
// The dashboard reads only the Prometheus metrics of docs/contract.md:
// throughput (received per listener; delivered, deferred, bounced and
// expired recipients; the deferral ratio), the queue by state, delivery
// and spool-commit latency quantiles from the histograms, SMTP errors in
// and out, bounces by class, TLS failures by policy and RFC 8460 result
// type, connections and TLS resumption, the ten busiest sites and domains
// (delivered, deferred, queue, connections, effective rate), tenants and
// campaigns, and the process. Its variables are the data source, job and
// instance (both multi-value, "All" = .*).
//
// Tests: dashboard_test.go checks its shape, has `promtool check rules`
// parse every query, and checks that every gannet_* name it reads is one
// engine/metrics writes; e2e TestE2EGrafanaDashboard runs every query on a
// real Prometheus scraping a live Gannet with mail flowing and requires an
// answer with data from each.
package grafana
