#!/usr/bin/env python3
"""The onnxruntime side of benches/host_latency.sh: agreement and latency.

  ort_latency.py check --onnx M.onnx --inputs inputs.f32 --ref ref.f32 --what NAME
      runs every image (batch 1) and fails unless every logit is within
      1e-5 * max(1, |reference|) of the reference (absolute below 1, relative above).
  ort_latency.py bench --onnx M.onnx --inputs inputs.f32 --rounds R --out ort.json
      one thread (intra_op_num_threads=1, inter_op_num_threads=1, sequential execution),
      batch 1, every image R times after one warm-up round; median latency of the call
      through an IO binding (input copied in, output bound once), which keeps the Python
      overhead to about a microsecond. Plain `session.run` is reported too.
Inputs are normalized f32 images, row-major little-endian, shape [n, C, H, W] taken from
the model's input.
"""
import argparse, json, sys, time

import numpy as np
import onnxruntime as ort

TOL = 1e-5


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def inputs(sess, path):
    chw = [int(d) for d in sess.get_inputs()[0].shape[1:]]
    x = np.fromfile(path, dtype="<f4")
    return x.reshape([-1, 1] + chw)  # n images of [1, C, H, W]


def check(a):
    sess = session(a.onnx)
    x = inputs(sess, a.inputs)
    name = sess.get_inputs()[0].name
    got = np.concatenate([sess.run(None, {name: xi})[0] for xi in x])
    want = np.fromfile(a.ref, dtype="<f4").reshape(got.shape)
    d = np.abs(got - want)
    rel = d / np.maximum(np.abs(want), 1.0)
    bad = int((~(rel <= TOL)).sum())  # NaN counts as a miss
    print(f"agree {a.what}: {len(x)} images, {want.size} logits: max |diff| {d.max():.2e}, "
          f"max |diff|/max(1,|ref|) {rel.max():.2e} (tolerance 1e-5): {'ok' if bad == 0 else 'FAIL'}")
    if bad:
        sys.exit(f"error: {a.what}: {bad} logits differ by more than 1e-5")


def bench(a):
    sess = session(a.onnx)
    x = inputs(sess, a.inputs)
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    io = sess.io_binding()
    io.bind_output(out)
    bound, plain = [], []
    clock = time.perf_counter_ns
    for r in range(a.rounds + 1):  # round 0 warms up
        for xi in x:
            s = clock()
            io.bind_cpu_input(name, xi)
            sess.run_with_iobinding(io)
            e1 = clock() - s
            s = clock()
            sess.run([out], {name: xi})
            e2 = clock() - s
            if r:
                bound.append(e1 / 1e3)
                plain.append(e2 / 1e3)
    res = {"onnxruntime": ort.__version__, "images": len(x), "rounds": a.rounds,
           "ort_us": float(np.median(bound)), "ort_run_us": float(np.median(plain))}
    print(f"onnxruntime  {res['ort_us']:.2f} µs (io binding; plain session.run {res['ort_run_us']:.2f} µs), "
          f"onnxruntime {ort.__version__}")
    with open(a.out, "w") as f:
        json.dump(res, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["check", "bench"])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--ref")
    ap.add_argument("--what", default="onnxruntime")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--out", default="ort.json")
    a = ap.parse_args()
    check(a) if a.cmd == "check" else bench(a)


if __name__ == "__main__":
    main()
