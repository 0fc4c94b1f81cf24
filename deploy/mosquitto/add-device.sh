#!/bin/sh
# Add, change or revoke an MQTT credential in Mosquitto's password file.
#
#   deploy/mosquitto/add-device.sh [-f PASSWORD_FILE] DEVICE_ID       add or change
#   deploy/mosquitto/add-device.sh [-f PASSWORD_FILE] -D DEVICE_ID    revoke
#   deploy/mosquitto/add-device.sh [-f PASSWORD_FILE] [-a ACL_FILE] --gateway EDGE_NODE_ID
#                                                   (or -G) add a Sparkplug B gateway
#
# The username is the device id, so the ACL line "pattern write viu/%u/telemetry"
# lets the device publish to viu/<device id>/telemetry and nowhere else. The
# ingesters' service credential (viu-ingest) is created the same way.
#
# --gateway: the account is a Sparkplug B edge node (the username is its edge
# node id). Besides the password, a "user" block is written to the ACL file
# (ACL_FILE, default acl next to this script) granting it its own node's
# spBv1.0 topics: a gateway speaks for every device it names, so only the
# operator creates one, and only for a gateway it trusts with those devices.
# Revoking (-D) an account also removes its gateway block. Reload the broker
# afterwards (SIGHUP rereads the password and ACL files).
#
# The password comes from $DEVICE_PASSWORD when set, else it is generated and
# printed once on standard output. It never appears on a command line
# (mosquitto_passwd reads it from its standard input) and the file keeps only
# a salted PBKDF2-SHA512 hash.
#
# PASSWORD_FILE defaults to passwd next to this script, the file compose.yaml
# mounts. The broker's image reads it as gid 1883: chgrp 1883 it, mode 0640
# (later changes keep both). Needs mosquitto_passwd (Debian/Ubuntu package
# "mosquitto"), or run this inside the broker image, e.g.
#   docker run --rm -i -v "$PWD/deploy/mosquitto:/mosquitto/config" \
#     --entrypoint sh eclipse-mosquitto:2 /mosquitto/config/add-device.sh crusher-07
# The broker rereads the file on SIGHUP:
#   docker compose -f deploy/compose.yaml kill -s SIGHUP mosquitto
set -eu

usage() {
    echo "usage: $0 [-f PASSWORD_FILE] [-a ACL_FILE] [-D] [-G|--gateway] DEVICE_ID" >&2
    exit 2
}

file="$(dirname "$0")/passwd"
acl="$(dirname "$0")/acl"
delete=""
gateway=""
for arg in "$@"; do # --gateway is -G (getopts knows short options only)
    shift
    if [ "$arg" = "--gateway" ]; then set -- "$@" -G; else set -- "$@" "$arg"; fi
done
while getopts "f:a:DG" opt; do
    case "$opt" in
        f) file="$OPTARG" ;;
        a) acl="$OPTARG" ;;
        D) delete=1 ;;
        G) gateway=1 ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
device="$1"

# The device id rule of the spec (section 1.1); it also keeps %u substitution safe.
if ! printf '%s' "$device" | grep -Eq '^[A-Za-z0-9._-]{1,64}$' ||
    [ "$(printf '%s' "$device" | wc -l)" -ne 0 ]; then
    echo "$0: '$device' is not a device id (1-64 of A-Z a-z 0-9 . _ -)" >&2
    exit 2
fi
command -v mosquitto_passwd >/dev/null || {
    echo "$0: mosquitto_passwd not found (install the mosquitto package)" >&2
    exit 1
}

# Drop the account's gateway block from the ACL file, if it has one.
drop_gateway() {
    [ -e "$acl" ] || return 0
    awk -v begin="# gateway $device begin" -v end="# gateway $device end" '
        $0 == begin { skip = 1; next }
        skip && $0 == end { skip = 0; next }
        !skip' "$acl" >"$acl.tmp"
    cat "$acl.tmp" >"$acl" # in place: the file keeps its owner and mode
    rm -f "$acl.tmp"
}

if [ -n "$delete" ]; then
    mosquitto_passwd -D "$file" "$device"
    drop_gateway
    echo "revoked $device in $file (reload the broker: SIGHUP)" >&2
    exit 0
fi

if [ ! -e "$file" ]; then
    (umask 077 && : >"$file")
fi
password="${DEVICE_PASSWORD:-}"
generated=""
if [ -z "$password" ]; then
    password="$(head -c 32 /dev/urandom | base64 | tr -d '\n/+=' | cut -c1-32)"
    generated=1
fi
printf '%s\n%s\n' "$password" "$password" | mosquitto_passwd "$file" "$device" >/dev/null
echo "added $device to $file (reload the broker: SIGHUP)" >&2
if [ -n "$gateway" ]; then
    drop_gateway
    {
        printf '# gateway %s begin\n' "$device"
        printf 'user %s\n' "$device"
        for kind in NBIRTH NDEATH NDATA; do
            printf 'topic write spBv1.0/+/%s/%s\n' "$kind" "$device"
        done
        for kind in DBIRTH DDEATH DDATA; do
            printf 'topic write spBv1.0/+/%s/%s/+\n' "$kind" "$device"
        done
        printf 'topic read spBv1.0/+/NCMD/%s\n' "$device"
        printf '# gateway %s end\n' "$device"
    } >>"$acl"
    echo "granted $device the Sparkplug B topics of edge node $device in $acl" >&2
fi
if [ -n "$generated" ]; then
    printf '%s\n' "$password"
fi
