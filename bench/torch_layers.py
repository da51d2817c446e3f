#!/usr/bin/env python3
"""PyTorch peer of `bench_ops`' conv2d table: the same layers (ResNet-18 on 3x32x32, or with
--fmnist the default Fashion-MNIST config's encoder), the same batch (256), the same timing
(one warm-up, median of 7 repetitions, wall clock) and the same columns: forward ms and forward +
backward ms, with the gradients of x (not for a stem, whose input is the image), w and the bias.
Run with Debian's interpreter, 2 threads as bench_ops:
    /usr/bin/python3 bench/torch_layers.py [--fmnist] [--threads N] [--batch B]
"""
import argparse
import statistics
import time

import torch

R18 = [("stem 3->64 3x3 @32", 3, 64, 32, 3, 1, 1), ("64->64 3x3 @32", 64, 64, 32, 3, 1, 1),
       ("64->128 3x3 s2 @32", 64, 128, 32, 3, 2, 1), ("128->128 3x3 @16", 128, 128, 16, 3, 1, 1),
       ("256->256 3x3 @8", 256, 256, 8, 3, 1, 1), ("512->512 3x3 @4", 512, 512, 4, 3, 1, 1),
       ("proj 64->128 1x1 s2 @32", 64, 128, 32, 1, 2, 0),
       ("256->256 1x1 @8 (direct)", 256, 256, 8, 1, 1, 0)]
FMNIST = [("stem 1->16 3x3 @28", 1, 16, 28, 3, 1, 1), ("16->16 3x3 @28", 16, 16, 28, 3, 1, 1),
          ("16->32 3x3 s2 @28", 16, 32, 28, 3, 2, 1), ("32->32 3x3 @14", 32, 32, 14, 3, 1, 1),
          ("32->64 3x3 s2 @14", 32, 64, 14, 3, 2, 1), ("64->64 3x3 @7", 64, 64, 7, 3, 1, 1),
          ("64->128 3x3 s2 @7", 64, 128, 7, 3, 2, 1), ("128->128 3x3 @4", 128, 128, 4, 3, 1, 1),
          ("proj 16->32 1x1 s2 @28", 16, 32, 28, 1, 2, 0),
          ("proj 64->128 1x1 s2 @7", 64, 128, 7, 1, 2, 0)]


def bench(name, c, oc, hw, k, stride, pad, batch, reps=7):
    conv = torch.nn.Conv2d(c, oc, k, stride, pad, bias=True)
    x = torch.rand(batch, c, hw, hw) * 2 - 1
    x.requires_grad_(not name.startswith("stem"))
    g = None
    tf, tb = [], []
    for r in range(reps + 1):
        t0 = time.perf_counter()
        with torch.no_grad():
            conv(x)
        tf.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        y = conv(x)
        if g is None:
            g = torch.rand_like(y) * 2 - 1
        y.backward(g)
        tb.append(time.perf_counter() - t0)
        conv.zero_grad()
        x.grad = None
    fwd, fb = statistics.median(tf[1:]), statistics.median(tb[1:])
    flops = 2.0 * batch * oc * ((hw + 2 * pad - k) // stride + 1) ** 2 * c * k * k
    terms = 1 + (not name.startswith("stem")) + 1
    print(f"{name:36s} {flops / fwd * 1e-9:7.1f} {terms * flops / fb * 1e-9:9.1f} "
          f"{fwd * 1e3:8.2f} {fb * 1e3:8.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fmnist", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"PyTorch {torch.__version__}, {a.threads} threads, batch {a.batch}; "
          "median of 7 after 1 warm-up")
    print(f"{'conv2d (GFLOP/s)':36s} {'fwd':>7s} {'fwd+bwd':>9s} {'fwd ms':>8s} {'f+b ms':>8s}")
    for layer in (FMNIST if a.fmnist else R18):
        bench(*layer, a.batch)


if __name__ == "__main__":
    main()
