#!/bin/sh
# gannet prerm: stop and disable the service before its files go (queued mail stays in
# /var/lib/gannet/spool for the next start).
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl stop gannet.service >/dev/null 2>&1 || true
	systemctl disable gannet.service >/dev/null 2>&1 || true
fi
exit 0
