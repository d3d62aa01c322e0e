#!/usr/bin/env bash
# Build .whl/: what benchmarks/gpu_check.py needs on a GPU machine that reaches no package registry.
#
#   benchmarks/build_gpu_wheels.sh            # from anywhere; prints the device command at the end
#
# The GPU image (Python 3.12; /work/.library/device/KINDS.md lists its packages) already has torch, torchvision,
# timm, huggingface_hub, einops, ninja, PyYAML, regex, safetensors, tqdm, matplotlib, numpy, packaging, msgpack,
# psutil, py-cpuinfo and filelock. This downloads, for CPython 3.12 manylinux x86_64, the rest at the versions
# installed in the venv the CPU tests ran with (VENV_PYTHON, default /work/venv/bin/python, else python3):
# deepspeed (sdist-only on PyPI: built here into a py3-none-any wheel with no ops pre-compiled; chronoclip uses
# torch's AdamW, nothing is JIT-compiled) and its missing dependencies (hjson, pydantic and its three), open_clip_torch,
# webdataset (+ braceexpand), decord, ftfy (+ wcwidth), filelock, then chronoclip's own wheels (root + 4 methods).
#
# PyAV is left out: its wheel alone is ~36 MB and a run carries at most 64 MiB *including the working tree*
# (~27 MiB). The GPU machine only needs it to encode the synthetic clips, so the shards are generated here instead
# (gpu_check.py --prepare-shards .whl/shards, ~3 MB) and the check reads them with --shards.
#
# The folder is git-ignored and travels with the device run through `carry`; the script fails when the wheels and
# shards plus the tracked working tree exceed CARRY_LIMIT_MIB (default 62 of the 64). docs/gpu-check.md has the
# whole procedure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/.whl"
PIP="${PIP:-python3 -m pip}"
LIMIT_MIB="${CARRY_LIMIT_MIB:-62}"
if [[ -z "${VENV_PYTHON:-}" ]]; then
    if [[ -x /work/venv/bin/python ]]; then VENV_PYTHON=/work/venv/bin/python; else VENV_PYTHON=python3; fi
fi

# Third-party distributions the image lacks (and filelock/typing-extensions: core.io and pydantic need recent ones).
WHEELS="decord pydantic-core wcwidth open_clip_torch webdataset braceexpand ftfy filelock hjson pydantic \
annotated-types typing-inspection typing-extensions"

version_of() {
    "$VENV_PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"
}

rm -rf "$OUT"
mkdir -p "$OUT"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux2010_x86_64)

echo "== third-party wheels (cp312, manylinux x86_64), versions from $VENV_PYTHON"
for name in $WHEELS; do
    spec="$name==$(version_of "$name")"
    echo "-- $spec"
    $PIP download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${PLATFORMS[@]}" -d "$OUT" "$spec"
done

echo "== deepspeed (sdist on PyPI: built into a wheel here)"
DS_VERSION="$(version_of deepspeed)"
DS_BUILD_OPS=0 $PIP wheel --quiet --no-deps -w "$OUT" "deepspeed==$DS_VERSION"
ls "$OUT"/deepspeed-"$DS_VERSION"-py3-none-any.whl >/dev/null || {
    echo "error: the deepspeed wheel is not py3-none-any:" "$OUT"/deepspeed-*.whl >&2; exit 1; }

echo "== chronoclip wheels (root + methods)"
BUILD_TMP="$(mktemp -d)"
trap 'rm -rf "$BUILD_TMP"' EXIT
for project in . methods/t2l methods/tcclip methods/ila methods/stan; do
    # a copy without build/ and *.egg-info leftovers, so the wheel holds exactly the tracked sources
    src="$BUILD_TMP/$(basename "$(cd "$project" && pwd)")"
    mkdir -p "$src"
    git -C "$project" ls-files -z . | (cd "$project" && xargs -0 cp --parents -t "$src")
    $PIP wheel --quiet --no-deps -w "$OUT" "$src"
done

echo "== shards (generated here: the GPU machine has no PyAV to encode them)"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1 "$VENV_PYTHON" benchmarks/gpu_check.py \
    --prepare-shards "$OUT/shards"

echo "== .whl/"
ls -la "$OUT"
whl_kib=$(du -sk "$OUT" | cut -f1)
tree_kib=$(git ls-files -z | xargs -0 cat | wc -c | awk '{ print int($1 / 1024) }')
total_kib=$((whl_kib + tree_kib))
awk -v w="$whl_kib" -v t="$tree_kib" -v l="$LIMIT_MIB" 'BEGIN { printf "wheels + shards: %.1f MiB; tracked \
working tree: %.1f MiB; together %.1f MiB (limit %s MiB; a run carries at most 64 MiB)\n", w / 1024, t / 1024,
(w + t) / 1024, l }'
if (( total_kib > LIMIT_MIB * 1024 )); then
    echo "error: wheels + working tree are over $LIMIT_MIB MiB" >&2
    exit 1
fi

cat <<'EOF'

Device run (the `run` tool, from the repository root; carry the wheel folder), e.g. with timeout_s 600:
  carry: [".whl"]
  command:
    set -eo pipefail; (python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || for w in .whl/*.whl; do python3 -m zipfile -e "$w" /tmp/site; done); export PYTHONPATH=/tmp/site; PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --shards .whl/shards --out "$OUT" 2>&1 | tee "$OUT/gpu_check.log"
Then copy the returned gpu_check.json and gpu_check.md into benchmarks/results/ and commit them.
EOF
