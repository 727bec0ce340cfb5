#!/usr/bin/env python3
"""The peer for benches/train_vs_pytorch.sh: the network of an architecture file
(examples/archs/lenet.toml by default), built layer by layer from its [[layer]] list so it is
the same network Kestrel trains, with the same optimizer settings, batch size and split size,
on the CPU, or on a CUDA GPU (`--device cuda`: the whole dataset uploaded to the GPU once, so
only training is timed; eager, or `--compile` for torch.compile; an untimed warm-up epoch first
so that CUDA's and the compiler's start-up are not counted).

Prints one JSON line: {"epoch_seconds": [...], "test_accuracy": ..., "threads": ...}.
Only the training loop is timed (data loading and evaluation are not), as in Kestrel's
per-epoch time.
"""
import argparse, gzip, json, math, os, time

import numpy as np
import torch
import torch.nn as nn


def idx(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(d, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise SystemExit(f"{stem}[.gz] not found in {d}")


def build(arch):
    """nn.Sequential from an architecture file's layers (the subset lenet-style nets use)."""
    c, h, w = arch["input"]
    layers = []
    for i, l in enumerate(arch["layer"]):
        t = l["type"]
        if t == "conv2d":
            k, st, pad = l["kernel"], l.get("stride", 1), l.get("pad", 0)
            layers.append(nn.Conv2d(c, l["out"], k, stride=st, padding=pad))
            c, h, w = l["out"], (h + 2 * pad - k) // st + 1, (w + 2 * pad - k) // st + 1
        elif t == "maxpool2d":
            k = l["kernel"]
            st = l.get("stride", k)
            layers.append(nn.MaxPool2d(k, st))
            h, w = (h - k) // st + 1, (w - k) // st + 1
        elif t == "relu":
            layers.append(nn.ReLU())
        elif t == "flatten":
            layers.append(nn.Flatten())
            c, h, w = c * h * w, 1, 1
        elif t == "linear":
            if h * w != 1:
                layers.append(nn.Flatten())
                c, h, w = c * h * w, 1, 1
            layers.append(nn.Linear(c, l["out"]))
            c = l["out"]
        else:
            raise SystemExit(f"layer {i}: type {t!r} has no PyTorch twin in this benchmark")
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default=os.path.join(os.path.dirname(__file__), "..", "examples",
                                                   "archs", "lenet.toml"))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--train-images", type=int, default=55000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--schedule", choices=["exponential", "cosine"], default="exponential")
    ap.add_argument("--factor", type=float, default=1000.0)
    ap.add_argument("--flip", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--compile", action="store_true", help="torch.compile the network")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed epochs first (default: 1 on CUDA or with --compile, else 0)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda:
        # Plain FP32 GEMMs and convolutions, as Kestrel's default (no TF32).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    warmup = a.warmup if a.warmup is not None else (1 if cuda or a.compile else 0)

    xtr = idx(find(a.data, "train-images-idx3-ubyte")).astype(np.float32) / 255.0
    ytr = idx(find(a.data, "train-labels-idx1-ubyte")).astype(np.int64)
    xte = idx(find(a.data, "t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
    yte = idx(find(a.data, "t10k-labels-idx1-ubyte")).astype(np.int64)
    mean, std = xtr.mean(), xtr.std()
    xtr = torch.from_numpy((xtr[: a.train_images] - mean) / std).unsqueeze(1).to(dev)
    ytr = torch.from_numpy(ytr[: a.train_images]).to(dev)
    xte = torch.from_numpy((xte - mean) / std).unsqueeze(1).to(dev)
    yte = torch.from_numpy(yte).to(dev)

    if a.arch.endswith(".json"):  # the same file as JSON (Python < 3.11 has no tomllib)
        with open(a.arch) as f:
            arch = json.load(f)
    else:
        import tomllib
        with open(a.arch, "rb") as f:
            arch = tomllib.load(f)
    net = build(arch).to(dev)
    model = torch.compile(net) if a.compile else net
    train = arch.get("train", {})
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=train.get("momentum", 0.9),
                          weight_decay=train.get("weight_decay", 5e-4))
    loss_fn = nn.CrossEntropyLoss()
    steps = (len(xtr) + a.batch - 1) // a.batch
    total = max(1, steps * a.epochs)
    if a.schedule == "exponential":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: a.factor ** (-s / total))
    else:
        lo = 1.0 / a.factor
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lo + 0.5 * (1 - lo) * (1 + math.cos(math.pi * s / total)))
    times = []
    for epoch in range(warmup + a.epochs):
        perm = torch.randperm(len(xtr), device=dev)
        model.train()
        if cuda:
            torch.cuda.synchronize(dev)
        t = time.perf_counter()
        for s in range(steps):
            b = perm[s * a.batch: (s + 1) * a.batch]
            opt.zero_grad(set_to_none=True)
            xb = xtr[b]
            if a.flip:
                m = torch.rand(len(b), device=dev) < 0.5
                xb = torch.where(m[:, None, None, None], xb.flip(3), xb)
            loss = loss_fn(model(xb), ytr[b])
            loss.backward()
            opt.step()
            sched.step()
        if cuda:
            torch.cuda.synchronize(dev)
        if epoch >= warmup:
            times.append(time.perf_counter() - t)
    model.eval()
    with torch.no_grad():
        acc = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                  for i in range(0, len(xte), 1000)) / len(xte)
    print(json.dumps({"arch": arch["name"], "params": sum(p.numel() for p in net.parameters()),
                      "epoch_seconds": times, "test_accuracy": acc, "threads": a.threads,
                      "device": str(dev), "compile": a.compile, "warmup_epochs": warmup,
                      "gpu": torch.cuda.get_device_name(dev) if cuda else None,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
