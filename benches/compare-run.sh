#!/bin/sh
# `ocibox run --rm IMAGE true` from a warm store, side by side with `podman run --rm` of the
# same image with runc and with crun, in one hyperfine run.
#
#   ./benches/compare-run.sh [RUNS]
#
# podman uses the cgroupfs manager, no network, a private vfs store, and rlimits within this
# machine's hard limits (it has no CAP_SYS_RESOURCE). crun 1.8 needs the hybrid host's
# `unified` cgroup2 mount hidden: its podman runs in a private mount namespace where that mount
# is lazily unmounted.
set -eu
cd "$(dirname "$0")/.."
runs="${1:-20}"
cargo build --release --locked -q -p examples --bin ocibox
OCIBOX="$PWD/target/release/ocibox"
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$OCIBOX" demo "$work/layout" >/dev/null
# Warm the ocibox store: the layers are unpacked once, then shared by every run.
"$OCIBOX" --root "$work/ocibox" run --rm "$work/layout:demo" true

pm() {
    echo "podman --root $work/$1/root --runroot $work/$1/run --storage-driver vfs --cgroup-manager cgroupfs --events-backend file --runtime $1"
}
U="--network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
for rt in runc crun; do
    (cd "$work" && $(pm "$rt") pull -q oci:layout:demo >/dev/null)
done
IMG=localhost/layout:latest

hyperfine --shell=sh --warmup 2 --runs "$runs" \
    -n "ocibox run --rm" "$OCIBOX --root $work/ocibox run --rm $work/layout:demo true" \
    -n "podman run --rm (runc)" "$(pm runc) run --rm $U $IMG true" \
    -n "podman run --rm (crun)" "unshare -m sh -c 'umount -l /sys/fs/cgroup/unified; $(pm crun) run --rm $U $IMG true'"
