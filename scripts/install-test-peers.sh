#!/usr/bin/env bash
# Installs the real peers the tests talk to (Debian packages), idempotently.
# Safe to run again: it only installs what is missing.
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_py() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }

have_cmd smtp-sink || [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
have_cmd swaks || need+=(swaks)
have_cmd dnsmasq || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
have_cmd curl || need+=(curl)
have_cmd msmtp || need+=(msmtp)
# A private Postfix relaying to Gannet authenticates with SASL PLAIN (Cyrus module).
compgen -G '/usr/lib/*/sasl2/libplain.so*' >/dev/null || need+=(libsasl2-modules)
# The private Postfix smarthost of the relay_user test keeps its accounts in a
# Cyrus sasldb made with saslpasswd2.
have_cmd saslpasswd2 || [ -x /usr/sbin/saslpasswd2 ] || need+=(sasl2-bin)
have_cmd dkimverify || need+=(python3-dkim)
have_cmd opendkim-testmsg || need+=(opendkim-tools)
# The signing milter for bench/run.sh's Postfix in scenario (c) (a private
# instance on a free port; the system service is stopped below).
[ -x /usr/sbin/opendkim ] || need+=(opendkim)
have_cmd promtool || need+=(prometheus)
have_cmd openssl || need+=(openssl)
# `make test-openssl` (part of `make test`): engine/dkim's RSA on libcrypto
# (build tag openssl) needs a C compiler and OpenSSL's headers.
have_cmd gcc || need+=(gcc)
[ -f /usr/include/openssl/evp.h ] || need+=(libssl-dev)
# deploy/package's test: `systemd-analyze verify` of the packaged unit (works
# without systemd running as PID 1); dpkg and runuser are in every Debian.
have_cmd systemd-analyze || need+=(systemd)
# swaks needs Perl's TLS modules for STARTTLS/implicit TLS, and these for AUTH.
perl -MIO::Socket::SSL -e1 >/dev/null 2>&1 || need+=(libio-socket-ssl-perl libnet-ssleay-perl)
perl -MAuthen::SASL -e1 >/dev/null 2>&1 || need+=(libauthen-sasl-perl)
perl -MDigest::HMAC_MD5 -e1 >/dev/null 2>&1 || need+=(libdigest-hmac-perl)
# DANE: a validating resolver (unbound) and a zone signer (ldns-signzone).
have_cmd unbound || [ -x /usr/sbin/unbound ] || need+=(unbound)
have_cmd ldns-signzone || need+=(ldnsutils)
# …and an authoritative server that serves the signed zone (nsd).
have_cmd nsd || [ -x /usr/sbin/nsd ] || need+=(nsd)
# The cluster tests (engine/cluster, e2e) start their own redis-server on a
# free loopback port; the system service is stopped below.
have_cmd redis-server || [ -x /usr/bin/redis-server ] || need+=(redis-server)
# The proxy test (e2e) puts its own haproxy, on loopback ports, in front of
# three gannet processes; the system service is stopped below.
have_cmd haproxy || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
# Event shipping tests (engine/events, e2e) start their own rabbitmq-server on
# a free loopback port with its own data dir; the system service is disabled below.
[ -x /usr/sbin/rabbitmq-server ] || have_cmd rabbitmq-server || need+=(rabbitmq-server)
# The console's browser test (e2e/console_test.go) drives headless Chromium
# with chromedp.
have_cmd chromium || need+=(chromium)
have_py aiosmtpd || need+=(python3-aiosmtpd)
have_py dkim || need+=(python3-dkim)
have_py jsonschema || need+=(python3-jsonschema) # TLS-RPT reports checked against RFC 8460's schema

if [ ${#need[@]} -eq 0 ]; then
  echo "install-test-peers: all peers present"
  exit 0
fi

# De-duplicate.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "install-test-peers: installing ${need[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "install-test-peers: not root; install these by hand: ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix must not configure (and start) a system MTA on port 25.
echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian may start services on install; the tests start their own instances.
for svc in postfix dnsmasq prometheus opendkim unbound nsd redis-server haproxy rabbitmq-server; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  service "$svc" stop >/dev/null 2>&1 || true
done
# The benchmark runs its own opendkim: the system one need not start at boot.
if command -v systemctl >/dev/null 2>&1; then systemctl disable opendkim unbound nsd redis-server haproxy rabbitmq-server >/dev/null 2>&1 || true; fi
update-rc.d opendkim disable >/dev/null 2>&1 || true
update-rc.d unbound disable >/dev/null 2>&1 || true
update-rc.d nsd disable >/dev/null 2>&1 || true
update-rc.d redis-server disable >/dev/null 2>&1 || true
update-rc.d haproxy disable >/dev/null 2>&1 || true
update-rc.d rabbitmq-server disable >/dev/null 2>&1 || true
echo "install-test-peers: done"
