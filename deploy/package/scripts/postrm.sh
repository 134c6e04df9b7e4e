#!/bin/sh
# gannet postrm: on purge, the data directory (spool, logs) goes too, as
# Postfix's queue does; the gannet user and group stay (files elsewhere may
# still belong to them), so a later install reuses them.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/gannet
	rmdir /etc/gannet 2>/dev/null || true
fi
exit 0
