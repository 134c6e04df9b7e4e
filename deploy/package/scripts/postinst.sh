#!/bin/sh
# gannet postinst: the system user and group, the data directory.
# Idempotent: running it again (reinstall, upgrade) changes nothing that is right.
set -e

if ! getent group gannet >/dev/null; then
	groupadd --system gannet
fi
if ! getent passwd gannet >/dev/null; then
	useradd --system --gid gannet --home-dir /var/lib/gannet --no-create-home \
		--shell /usr/sbin/nologin --comment "Gannet SMTP relay" gannet
fi

# Spool, logs, the generated certificate and the MTA-STS cache live here.
mkdir -p /var/lib/gannet
chown gannet:gannet /var/lib/gannet
chmod 0750 /var/lib/gannet
# The config may hold passwords and API keys: readable by gannet, not by all.
# Again on every configure: dpkg installs a new version of the conffile (an
# upgrade where it was not edited) as root:root.
if [ -f /etc/gannet/gannet.toml ]; then
	chgrp gannet /etc/gannet/gannet.toml
	chmod u+rw,g+r,g-w,o-rwx /etc/gannet/gannet.toml
fi

# Enabled but not started: review /etc/gannet/gannet.toml first, then
# `systemctl start gannet`. Without systemd (a container), nothing to do.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	systemctl enable gannet.service >/dev/null || true
	if [ -n "$2" ]; then
		# An upgrade: a running relay picks up the new binary.
		systemctl try-restart gannet.service >/dev/null || true
	fi
fi
exit 0
