#!/bin/sh
# Spawn latency side by side: create, start, wait, delete of a /bin/true container by ocirun,
# runc, crun and (when installed) youki, on the same bundle, in one run, with hyperfine.
#
#   ./benches/compare-spawn.sh [RUNS]
#
# crun 1.8 refuses this host's hybrid cgroup layout (v1 controllers plus a cgroup2 mount at
# /sys/fs/cgroup/unified) and works when the `unified` mount is hidden from it: its commands
# run in a private mount namespace where that mount is lazily unmounted (`unshare -m` + `umount
# -l`). The others run as they are. The extra `unshare` costs crun about a millisecond; the
# script measures that cost alone (`unshare-only`) so it can be subtracted.
set -eu
cd "$(dirname "$0")/.."
runs="${1:-50}"
cargo build --release --locked -q -p examples --bin ocirun
OCIRUN="$PWD/target/release/ocirun"
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bundle="$work/bundle"
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys" "$bundle/rootfs/tmp"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
# runc's default spec (the same for everyone), without a terminal, running /bin/true.
(cd "$bundle" && runc spec)
python3 - "$bundle/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = "/spawnbench"
json.dump(c, open(p, "w"))
EOF

cycle() {
    # $1: the runtime command; $2: its state root.
    printf '%s --root %s create --bundle %s b >/dev/null && %s --root %s start b && while [ "$(%s --root %s state b | grep -c stopped)" = 0 ]; do :; done; %s --root %s delete b' \
        "$1" "$2" "$bundle" "$1" "$2" "$1" "$2" "$1" "$2"
}

set -- \
    -n ocirun "$(cycle "$OCIRUN" "$work/ocirun")" \
    -n runc "$(cycle runc "$work/runc")" \
    -n crun "unshare -m sh -c 'umount -l /sys/fs/cgroup/unified; $(cycle crun "$work/crun")'" \
    -n unshare-only "unshare -m sh -c 'umount -l /sys/fs/cgroup/unified; true'"
if command -v youki >/dev/null; then
    set -- "$@" -n youki "$(cycle youki "$work/youki")"
fi
hyperfine --shell=sh --warmup 3 --runs "$runs" --export-markdown "$work/result.md" "$@" >/dev/null
cat "$work/result.md"
