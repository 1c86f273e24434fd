#!/bin/sh
# Container entrypoint for ramd (deploy/docker/Dockerfile).
#
# With no arguments it runs the node:
#
#   ramd start --foreground --config "$RAMD_CONFIG"
#
# the same command line as the systemd unit's ExecStart. With arguments
# it runs them instead (docker-compose exec node1 ramctl list, or
# `docker run ... ramd config validate`), after the same preparation.
#
# Configuration: if $RAMD_CONFIG (default /etc/ramd/ramd.toml) exists, it
# is used as it is (mount your own file there). Otherwise a minimal file is
# written from these variables, once:
#
#   RAMD_NODE_ID          this node's unique positive id (required)
#   RAMD_ADVERTISE_ADDR   the IP address peers and clients reach this
#                         container at (default: the first address of
#                         `hostname -i`); gossip binds to it and PostgreSQL
#                         listens on it
#   RAMD_DATA_DIR         PostgreSQL data directory (default
#                         /var/lib/ramd/data, inside the volume)
#
# Every other key comes from ramd's own RAMD_<SECTION>_<KEY> variables,
# which override the file at every start (docs/configuration.md lists
# them all): RAMD_CLUSTER_JOIN, RAMD_CLUSTER_EXPECT_NODES,
# RAMD_POSTGRESQL_PASSWORD, RAMD_API_AUTH_TOKEN, ...
#
# e2e/docker_test.go runs this script directly on the host (as root, with
# ramd and PostgreSQL from the host) with the environment of the three
# nodes of docker-compose.yml, addresses and ports rewritten for loopback.
set -eu

config=${RAMD_CONFIG:-/etc/ramd/ramd.toml}
export RAMD_CONFIG="$config"
data=${RAMD_DATA_DIR:-/var/lib/ramd/data}

log() {
	# The daemon logs JSON lines; so does its entrypoint.
	msg=$(printf '%s' "$2" | sed 's/[\\"]/\\&/g')
	printf '{"timestamp":"%s","level":"%s","component":"entrypoint","message":"%s"}\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" "$1" "$msg" >&2
}

if [ ! -e "$config" ]; then
	if [ -z "${RAMD_NODE_ID:-}" ]; then
		log error "RAMD_NODE_ID is not set: set it to this node's unique positive id, or mount a configuration file at $config"
		exit 64
	fi
	case $RAMD_NODE_ID in
	'' | *[!0-9]* | 0)
		log error "RAMD_NODE_ID=$RAMD_NODE_ID is not a positive integer"
		exit 64
		;;
	esac
	addr=${RAMD_ADVERTISE_ADDR:-}
	if [ -z "$addr" ]; then
		addr=$(hostname -i 2>/dev/null | awk '{print $1}')
	fi
	if [ -z "$addr" ]; then
		log error "cannot find this container's address: set RAMD_ADVERTISE_ADDR"
		exit 64
	fi
	mkdir -p "$(dirname "$config")"
	tmp="$config.tmp.$$"
	cat >"$tmp" <<CONFIG
# Written by the ramd container entrypoint on first start. Mount your own
# file at $config to replace it; RAMD_<SECTION>_<KEY> environment
# variables override any key at every start (docs/configuration.md).
[cluster]
node_id = $RAMD_NODE_ID
data_directory = "$data"

[mesh]
bind_addr = "$addr"

[api]
host = "0.0.0.0"

[postgresql]
host = "$addr"
hba_networks = ["samenet"]
CONFIG
	mv "$tmp" "$config"
	log info "wrote $config for node $RAMD_NODE_ID at $addr"
fi

# The parent of the data directory holds ramd's state directory too. As
# root, ramd runs PostgreSQL as the postgres user, which must be able to
# reach its data directory below it.
parent=$(dirname "$data")
if [ ! -d "$parent" ]; then
	mkdir -p "$parent"
	chmod 0755 "$parent"
fi

if [ $# -eq 0 ]; then
	set -- ramd start --foreground --config "$config"
fi
exec "$@"
