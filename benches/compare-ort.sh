#!/usr/bin/env bash
# kinglet vs ONNX Runtime, side by side, on this machine, from one run.
#
#   benches/compare-ort.sh                 # 1 and 2 threads, 200 runs per cell
#   THREADS=1 ITERATIONS=500 benches/compare-ort.sh
#   ROUNDS=10 benches/compare-ort.sh       # ORT and kinglet take turns in 10 rounds per cell (5)
#   COMPARE_ORT_VENV=target/arm-proxy/venv benches/compare-ort.sh   # reuse a venv that has them
#
# Makes its own Python venv (torch, transformers, onnx, onnxruntime from PyPI) under
# target/compare-ort/, exports ../shared/models/sentiment-minilm-sst2 to ONNX and quantizes it
# with onnxruntime's quantize_dynamic, exports the same checkpoint to an f32 kinglet bundle,
# builds kinglet in release mode, then prints one markdown table: kinglet vs ORT medians and
# their ratio for sentiment int8 and f32 at 16/64/128 tokens and the DLinear and LSTM
# forecasters. Needs ../shared (or KINGLET_SHARED).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${KINGLET_SHARED:-../shared}
WORK=target/compare-ort
VENV=${COMPARE_ORT_VENV:-$WORK/venv}
mkdir -p "$WORK"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch, transformers, onnx, onnxruntime, onnxscript" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q torch transformers onnx onnxruntime onnxscript
fi
cargo build -q --release -p kinglet-runtime -p kinglet-exporter
if [ ! -f "$WORK/sentiment-f32.kinglet" ]; then
  target/release/kinglet-export bert "$SHARED/models/sentiment-minilm-sst2" --precision f32 \
    -o "$WORK/sentiment-f32.kinglet"
fi
"$VENV/bin/python" benches/compare_ort.py \
  --kinglet target/release/kinglet \
  --checkpoint "$SHARED/models/sentiment-minilm-sst2" \
  --f32-bundle "$WORK/sentiment-f32.kinglet" \
  --int8-bundle models/sentiment.kinglet \
  --forecasters "$SHARED/models/forecast" \
  --models models \
  --work "$WORK" \
  --threads "${THREADS:-1,2}" \
  --iterations "${ITERATIONS:-200}" \
  --rounds "${ROUNDS:-5}"
