#!/bin/bash
# Runs opencontainers/runtime-tools' validation tests against OCI runtimes,
# side by side, as root. Not part of CI: the runtime-tools tree is not in
# this repository. Build it first (Go 1.19 fits its 2025-03 tree; later
# ones vendor Go 1.21's slices), offline from its vendor directory:
#   cd RTOOLS && GOFLAGS=-mod=vendor GOPROXY=off make runtimetest validation-executables
# Usage: tests/oci-validation.sh RTOOLS OUT RUNTIME... (e.g. target/release/ctr-oci /usr/bin/crun)
# Prints "test runtime: ok N, not ok M, exit E" per test; the TAP is kept in OUT.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 RTOOLS OUT RUNTIME..." >&2; exit 2; }
rtools=$(realpath "$1"); out=$(realpath -m "$2"); shift 2
mkdir -p "$out"
for runtime in "$@"; do
    runtime=$(realpath "$runtime")
    # A private mount namespace: crun refuses a hybrid host's empty v2
    # tree, and the harness gives the runtime /dev/null as stdin, which
    # crun 1.8 chowns, so a node of our own is bound over it there.
    unshare -m --propagation private bash -s "$rtools" "$out" "$runtime" <<'EOF'
set -u
rtools=$1; out=$2; runtime=$3; name=$(basename "$runtime")
umount /sys/fs/cgroup/unified 2>/dev/null || true
null=$(mktemp -u "$out/null.XXXXXX")
mknod -m 666 "$null" c 1 3 && mount --bind "$null" /dev/null
cd "$rtools"
for t in validation/*/*.t; do
    b=$(basename "$t" .t)
    RUNTIME=$runtime timeout 60 "./$t" > "$out/$b.$name.tap" 2>&1 < <(true)
    rc=$?
    echo "$b $name: ok $(grep -c '^ok' "$out/$b.$name.tap"), not ok $(grep -c '^not ok' "$out/$b.$name.tap"), exit $rc"
done
umount /dev/null; rm -f "$null"
EOF
    # The cgroup tests' fixed path, left behind by every runtime.
    for dir in /sys/fs/cgroup/*/testdir; do
        [ -d "$dir" ] && rmdir "$dir"/cgrouptest "$dir" 2>/dev/null || true
    done
done
