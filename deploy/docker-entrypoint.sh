#!/bin/sh
# Entrypoint of the viu image: runs `viu "$@"` (ingest, settle, api, db upgrade ...).
#
# Every ingester replica needs its own MQTT client id: it names the replica's
# persistent session, and two clients with one id keep disconnecting each
# other. Replicas started by compose (deploy.replicas / --scale) share one
# environment, so when VIU_MQTT_CLIENT_ID is unset for `ingest` or `up` it is
# derived here from the host name, which Docker sets to the container id:
# viu-ingest-<container id>. It survives restarts of the container, not its
# re-creation (see docs/operations.md, "Scaling out ingesters").
set -eu

if [ -z "${VIU_MQTT_CLIENT_ID:-}" ] && { [ "${1:-}" = ingest ] || [ "${1:-}" = up ]; }; then
    host="$(uname -n | tr -c 'A-Za-z0-9._\n-' '-')"
    VIU_MQTT_CLIENT_ID="$(printf 'viu-ingest-%s' "$host" | cut -c1-64)"
    export VIU_MQTT_CLIENT_ID
    echo "viu-entrypoint: VIU_MQTT_CLIENT_ID=$VIU_MQTT_CLIENT_ID (from the host name)" >&2
fi
exec viu "$@"
