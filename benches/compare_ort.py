#!/usr/bin/env python3
"""kinglet vs ONNX Runtime on the same models, side by side, from one run.

Called by benches/compare-ort.sh (which makes the venv and builds kinglet); see there.

ONNX Runtime gets what a user would give it: the checkpoint exported with torch.onnx (input_ids
only, dynamic sequence length, opset 17), the f32 graph and its `quantize_dynamic` int8 version
(QInt8 weights), one InferenceSession per model with all graph optimizations, intra-op threads
set to the thread count and one inter-op thread. The forecasters are the ONNX files the training
script wrote. kinglet runs `kinglet bench --json` on the shipped int8 bundle, an f32 bundle
exported from the same checkpoint, and the shipped forecaster bundles. Both sides: warm-up, then
the same number of timed runs on the same token ids / window shape, in alternating rounds
(`--rounds`, ORT then kinglet, each round a share of the runs) so that a burst of load from a
neighbour on a shared machine slows both sides alike; each side's figure is the median of its
round medians.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort


def export_onnx(checkpoint, out_dir):
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification

    f32 = os.path.join(out_dir, "sentiment-f32.onnx")
    int8 = os.path.join(out_dir, "sentiment-int8.onnx")
    if os.path.exists(f32) and os.path.exists(int8):
        return f32, int8
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, torch_dtype=torch.float32)
    model.eval()

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids):
            return self.m(input_ids=input_ids).logits

    ids = torch.ones((1, 16), dtype=torch.long)
    torch.onnx.export(Logits(model), (ids,), f32, input_names=["input_ids"], output_names=["logits"],
                      dynamic_axes={"input_ids": {1: "sequence"}}, opset_version=17, dynamo=False)
    quantize_dynamic(f32, int8, weight_type=QuantType.QInt8)
    return f32, int8


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def ort_median_ms(sess, feeds, iterations):
    for _ in range(max(3, min(20, iterations // 10))):
        sess.run(None, feeds)
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def kinglet_median_ms(kinglet, model, threads, iterations, tokens=None):
    cmd = [kinglet, "bench", "--json", "--model", model, "--threads", str(threads),
           "--iterations", str(iterations)]
    if tokens:
        cmd += ["--tokens", str(tokens)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["p50_ms"]


def alternate(rounds, ort_run, kinglet_run, iterations):
    """(kinglet, ORT): medians of per-round medians, the two sides taking turns."""
    per_round = max(1, iterations // rounds)
    k, o = [], []
    for _ in range(rounds):
        o.append(ort_run(per_round))
        k.append(kinglet_run(per_round))
    return statistics.median(k), statistics.median(o)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kinglet", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--f32-bundle", required=True)
    p.add_argument("--int8-bundle", required=True)
    p.add_argument("--forecasters", required=True, help="dir with dlinear/ and lstm/ ONNX models")
    p.add_argument("--models", required=True, help="kinglet models/ dir")
    p.add_argument("--work", required=True)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5,
                   help="alternating rounds per cell; the runs are shared out among them")
    args = p.parse_args()

    from transformers import AutoTokenizer

    f32_onnx, int8_onnx = export_onnx(args.checkpoint, args.work)
    tok = AutoTokenizer.from_pretrained(args.checkpoint)
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        sessions = {"f32": session(f32_onnx, threads), "int8": session(int8_onnx, threads)}
        bundles = {"f32": args.f32_bundle, "int8": args.int8_bundle}
        for precision in ["int8", "f32"]:
            for tokens in [16, 64, 128]:
                ids = tok("kinglet " * (tokens * 2), truncation=True, max_length=tokens)["input_ids"]
                assert len(ids) == tokens
                feeds = {"input_ids": np.array([ids], dtype=np.int64)}
                k, o = alternate(
                    args.rounds,
                    lambda n: ort_median_ms(sessions[precision], feeds, n),
                    lambda n: kinglet_median_ms(args.kinglet, bundles[precision], threads, n, tokens),
                    args.iterations)
                rows.append((f"sentiment {precision}", f"{tokens} tokens", threads, k, o))
        for name in ["dlinear", "lstm"]:
            sess = session(os.path.join(args.forecasters, name, "model.onnx"), threads)
            inp = sess.get_inputs()[0]
            shape = [d if isinstance(d, int) else 1 for d in inp.shape]
            window = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            iters = args.iterations * 10
            bundle = os.path.join(args.models, f"etth1-{name}.kinglet")
            k, o = alternate(
                args.rounds,
                lambda n: ort_median_ms(sess, {inp.name: window}, n),
                lambda n: kinglet_median_ms(args.kinglet, bundle, threads, n),
                iters)
            rows.append((f"{name} f32", "x".join(map(str, shape)), threads, k, o))

    print()
    print(f"kinglet vs ONNX Runtime {ort.__version__} — medians of {args.iterations} runs "
          f"(forecasters {args.iterations * 10}) in {args.rounds} alternating rounds, after warm-up")
    print()
    print("| model | input | threads | kinglet ms | ORT ms | kinglet / ORT |")
    print("|---|---|---|---|---|---|")
    for model, inp, threads, k, o in rows:
        print(f"| {model} | {inp} | {threads} | {k:.3f} | {o:.3f} | {k / o:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
