#!/usr/bin/env bash
# kinglet vs ONNX Runtime on an x86-64 CPU without AVX-512 (Intel N100-class kiosks, older
# desktops), counted in executed instructions per inference under qemu-user with a modelled
# CPU: the same TCG plugin as ../shared/tools/arm-proxy (its README says what the counts are
# and are not: a proxy for work, not time). Single thread, int8 sentiment at 16 and 128 tokens:
# kinglet with its own AVX2 int8 kernel, kinglet on tract's AVX2 integer kernels
# (KINGLET_KERNELS_SKIP), and ORT with quantize_dynamic on the same checkpoint.
#
#   benches/x86-proxy.sh                         # -cpu Haswell (AVX2 + FMA, no AVX-512)
#   X86PROXY_CPU=Skylake-Client X86PROXY_TOKENS="16 64 128" benches/x86-proxy.sh
#
# Reuses what benches/compare-ort.sh and the arm-proxy made: the Python venv with onnxruntime
# (target/compare-ort/venv, else target/arm-proxy/venv, else COMPARE_ORT_VENV) and the int8
# ONNX model (target/compare-ort/sentiment-int8.onnx); run compare-ort.sh once first. Needs
# qemu-user 7.2 (TCG has AVX2 from 7.2 on) and ../shared (or KINGLET_SHARED).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${KINGLET_SHARED:-../shared}
PROXY=$SHARED/tools/arm-proxy
CPU=${X86PROXY_CPU:-Haswell}
TOKENS=${X86PROXY_TOKENS:-16 128}
WORK=target/x86-proxy
mkdir -p "$WORK"
die() { echo "x86-proxy.sh: $*" >&2; exit 2; }

VENV=${COMPARE_ORT_VENV:-}
for v in target/compare-ort/venv target/arm-proxy/venv; do
  [ -n "$VENV" ] || { [ -x "$v/bin/python" ] && VENV=$v; } || true
done
[ -n "$VENV" ] && [ -x "$VENV/bin/python" ] || die "no venv with onnxruntime: run benches/compare-ort.sh once"
ONNX=target/compare-ort/sentiment-int8.onnx
[ -f "$ONNX" ] || die "no $ONNX: run benches/compare-ort.sh once"
command -v qemu-x86_64 > /dev/null || die "qemu-x86_64 not found (Debian: apt-get install qemu-user)"

PLUGIN=$WORK/libinsncount.so
if [ ! -f "$PLUGIN" ] || [ "$PROXY/insncount.c" -nt "$PLUGIN" ]; then
  gcc -O2 -Wall -shared -fPIC -I"$PROXY" $(pkg-config --cflags glib-2.0) -o "$PLUGIN" "$PROXY/insncount.c"
fi
# fixed getrandom, so hash seeds (and with them the counts) repeat from run to run
FAKERANDOM=$WORK/libfakerandom.so
if [ ! -f "$FAKERANDOM" ] || [ "$PROXY/fakerandom.c" -nt "$FAKERANDOM" ]; then
  gcc -O2 -shared -fPIC -o "$FAKERANDOM" "$PROXY/fakerandom.c"
fi
cargo build -q --release -p kinglet-runtime
KINGLET=target/release/kinglet

# count TAG [VAR=VALUE ...] CMD...: total guest instructions of one run (the guest inherits
# qemu's environment; qemu's own -E splits values at commas)
count() {
  local tag=$1; shift
  local envs=()
  while [[ "${1:-}" == *=* ]]; do envs+=("$1"); shift; done
  env "${envs[@]}" qemu-x86_64 -E LD_PRELOAD="$FAKERANDOM" -cpu "$CPU" -plugin "$PLUGIN" -d plugin \
    -D "$WORK/$tag.plugin" "$@" > "$WORK/$tag.out" 2> "$WORK/$tag.err" \
    || die "failed: $* (see $WORK/$tag.err)"
  awk '/^insns:/{print $2}' "$WORK/$tag.plugin"
}
# kinglet TOKENS SKIP: per inference; bench runs 1 + 3 warm-up + N, so N = 6 and N = 1 differ by 5
kinglet_per() {
  local tok=$1 skip=$2 lo hi
  lo=$(count "kinglet-$tok-$skip-1" KINGLET_KERNELS_SKIP="$skip" "$KINGLET" bench \
    --model models/sentiment.kinglet --tokens "$tok" --iterations 1 --threads 1 --json)
  hi=$(count "kinglet-$tok-$skip-6" KINGLET_KERNELS_SKIP="$skip" "$KINGLET" bench \
    --model models/sentiment.kinglet --tokens "$tok" --iterations 6 --threads 1 --json)
  echo $(( (hi - lo) / 5 ))
}
# ORT TOKENS: per inference (ort_count.py: warm-up, then 0 or 5 more runs)
ort_per() {
  local tok=$1 lo hi
  lo=$(count "ort-$tok-0" "$VENV/bin/python" "$PROXY/ort_count.py" "$ONNX" 0 "$tok")
  hi=$(count "ort-$tok-5" "$VENV/bin/python" "$PROXY/ort_count.py" "$ONNX" 5 "$tok")
  echo $(( (hi - lo) / 5 ))
}

kernel=$(qemu-x86_64 -cpu "$CPU" "$KINGLET" inspect --cpu 2> /dev/null)
echo "qemu-x86_64 -cpu $CPU: $kernel"
echo
echo "| int8 sentiment | kinglet (own AVX2 kernel) | kinglet on tract's kernels | ORT $("$VENV/bin/python" -c 'import onnxruntime; print(onnxruntime.__version__)') | kinglet / ORT |"
echo "|---|---|---|---|---|"
for tok in $TOKENS; do
  k=$(kinglet_per "$tok" avx512)
  t=$(kinglet_per "$tok" avx512,kinglet_avx2)
  o=$(ort_per "$tok")
  echo "| $tok tokens | $k | $t | $o | $(python3 -c "print(f'{$k / $o:.2f}')") |"
done
echo
echo "(executed x86-64 instructions per inference, 1 thread: a proxy for work, not time)"
