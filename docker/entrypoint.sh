#!/bin/sh
# Container entrypoint for tessera.
#
# Before serving (`serve`, the image's default CMD), make sure the signing key
# named by JWT_PRIVATE_KEY_PATH exists: on the first start with an empty key
# volume, generate one with `tessera keygen` (PKCS#8 PEM, mode 0600). An
# existing key is never touched. The key lives only in the volume, never in the
# image. Other commands (`migrate`, `keygen PATH`, `user …`, `--help`) run as
# given.
#
# Then exec tessera, so it runs as PID 1 and receives SIGTERM directly.
set -eu

key=${JWT_PRIVATE_KEY_PATH:-}

if [ "${1:-serve}" = serve ] && [ -n "$key" ] && [ ! -e "$key" ]; then
    # Write the key under a temporary name in the same directory, then
    # hard-link it into place: the key appears atomically (never half
    # written), and a container that loses a race with another one sharing
    # the volume keeps the winner's key instead of overwriting it.
    dir=$(dirname -- "$key")
    tmp=$(mktemp -d "$dir/.tessera-keygen.XXXXXX") || {
        echo "tessera: error: JWT_PRIVATE_KEY_PATH: cannot write a new key into $dir" >&2
        exit 1
    }
    trap 'rm -rf -- "$tmp"' EXIT
    tessera keygen "$tmp/key.pem"
    if ln -- "$tmp/key.pem" "$key" 2>/dev/null; then
        echo "tessera: generated a new signing key at $key" >&2
    elif [ ! -e "$key" ]; then
        echo "tessera: error: JWT_PRIVATE_KEY_PATH: cannot create $key" >&2
        exit 1
    fi
    rm -rf -- "$tmp"
    trap - EXIT
fi

exec tessera "$@"
