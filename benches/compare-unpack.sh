#!/bin/sh
# Times oci-unpack (flat and layer store), `umoci unpack` and `tar -x` of the same layer blobs,
# in one run on the same filesystem (criterion bench `unpack`), then prints each tool's median
# time and its ratio to ours. Sizes: see the header of benches/benches/unpack.rs
# (OCI_BENCH_SMALL_FILES, OCI_BENCH_LARGE_MIB, OCI_BENCH_DISTRO, OCI_BENCH_UNPACK, OCI_BENCH_DIR).
# Arguments go to criterion: a filter such as 'unpack_small/.*/tar' runs part of it.
set -eu
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo bench -p benches --bench unpack -- "$@"
python3 - "$target/criterion" <<'PY'
import json, os, sys
root = sys.argv[1]
for group in sorted(d for d in os.listdir(root) if d.startswith("unpack_")):
    times = {}
    for tool in os.listdir(os.path.join(root, group)):
        tdir = os.path.join(root, group, tool)
        if not os.path.isdir(tdir) or tool == "report":
            continue
        for comp in os.listdir(tdir):
            est = os.path.join(tdir, comp, "new", "estimates.json")
            if os.path.exists(est):
                with open(est) as f:
                    times[(comp, tool)] = json.load(f)["median"]["point_estimate"] / 1e9
    for comp in sorted({c for c, _ in times}):
        ours = times.get((comp, "oci-unpack-flat"))
        print(f"{group} {comp}:")
        for (c, tool), t in sorted(times.items(), key=lambda kv: kv[1]):
            if c != comp:
                continue
            ratio = f"{t / ours:5.2f}x ours-flat" if ours else ""
            print(f"  {tool:18} {t:8.3f} s  {ratio}")
PY
