#!/bin/sh
# Add, change or revoke an MQTT credential in Mosquitto's password file.
#
#   deploy/mosquitto/add-device.sh [-f PASSWORD_FILE] DEVICE_ID       add or change
#   deploy/mosquitto/add-device.sh [-f PASSWORD_FILE] -D DEVICE_ID    revoke
#
# The username is the device id, so the ACL line "pattern write viu/%u/telemetry"
# lets the device publish to viu/<device id>/telemetry and nowhere else. The
# ingesters' service credential (viu-ingest) is created the same way.
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
    echo "usage: $0 [-f PASSWORD_FILE] [-D] DEVICE_ID" >&2
    exit 2
}

file="$(dirname "$0")/passwd"
delete=""
while getopts "f:D" opt; do
    case "$opt" in
        f) file="$OPTARG" ;;
        D) delete=1 ;;
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

if [ -n "$delete" ]; then
    mosquitto_passwd -D "$file" "$device"
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
if [ -n "$generated" ]; then
    printf '%s\n' "$password"
fi
