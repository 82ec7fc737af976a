#!/bin/sh
# RAUC hook for a bundle that carries a kinglet model as `model.kinglet`: refuse the bundle
# when the model does not verify on this device, install it after the slots are written.
set -eu
DIR=/var/lib/kinglet
KEYS=/etc/kinglet/fleet.pub

case "$1" in
    install-check)
        kinglet verify --model "$RAUC_BUNDLE_MOUNT_POINT/model.kinglet" --require-signed "$KEYS" \
            || { echo "kinglet model does not verify on this device" >&2; exit 10; }
        ;;
    slot-post-install)
        kinglet install "$RAUC_BUNDLE_MOUNT_POINT/model.kinglet" --into "$DIR" --require-signed "$KEYS"
        ;;
esac
exit 0
