#!/usr/bin/env python3
"""PyTorch peer of `bench_ops`' conv2d table: the same layers (ResNet-18 on 3x32x32, or with
--fmnist the default Fashion-MNIST config's encoder), the same batch (256), the same timing
(one warm-up, median of 7 repetitions, wall clock) and the same columns: forward ms and forward +
backward ms, with the gradients of x (not for a stem, whose input is the image), w and the bias.
With --mae, the peer of `bench_ops --mae`: the ops of one mae-vitt step at their shapes as the
PyTorch peer (torch_ref.py: nn.MultiheadAttention, nn.LayerNorm, nn.GELU) runs them, forward and
forward + backward, and each op's sum over the step. --cpu-clock times CPU seconds of the process
(time.process_time) instead of wall clock, as bench_ops --cpu-clock.
Run with Debian's interpreter, 2 threads as bench_ops:
    /usr/bin/python3 bench/torch_layers.py [--fmnist | --mae] [--threads N] [--batch B]
        [--cpu-clock]
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


CLOCK = time.perf_counter


def bench(name, c, oc, hw, k, stride, pad, batch, reps=7):
    conv = torch.nn.Conv2d(c, oc, k, stride, pad, bias=True)
    x = torch.rand(batch, c, hw, hw) * 2 - 1
    x.requires_grad_(not name.startswith("stem"))
    g = None
    tf, tb = [], []
    for r in range(reps + 1):
        t0 = CLOCK()
        with torch.no_grad():
            conv(x)
        tf.append(CLOCK() - t0)
        t0 = CLOCK()
        y = conv(x)
        if g is None:
            g = torch.rand_like(y) * 2 - 1
        y.backward(g)
        tb.append(CLOCK() - t0)
        conv.zero_grad()
        x.grad = None
    fwd, fb = statistics.median(tf[1:]), statistics.median(tb[1:])
    flops = 2.0 * batch * oc * ((hw + 2 * pad - k) // stride + 1) ** 2 * c * k * k
    terms = 1 + (not name.startswith("stem")) + 1
    print(f"{name:36s} {flops / fwd * 1e-9:7.1f} {terms * flops / fb * 1e-9:9.1f} "
          f"{fwd * 1e3:8.2f} {fb * 1e3:8.2f}")


# bench_ops' mae_ops: (name, kind, a, b, c, d, count per step), the same shapes and counts
MAE = [("enc gather 16 of 64 tokens", "gather", 128, 64, 16, 192, 1),
       ("enc layer_norm 2176x192", "ln", 2176, 192, 0, 0, 25),
       ("enc linear qkv 2176x192->576", "lin", 2176, 192, 576, 0, 12),
       ("enc attention T17 H3 D64", "att", 128, 17, 192, 3, 12),
       ("enc linear proj+res 2176x192->192", "linres", 2176, 192, 192, 0, 12),
       ("enc linear fc1 2176x192->768", "lin", 2176, 192, 768, 0, 12),
       ("enc gelu 2176x768", "gelu", 2176, 768, 0, 0, 12),
       ("enc linear fc2+res 2176x768->192", "linres", 2176, 768, 192, 0, 12),
       ("dec linear embed 2048x192->128", "lin", 2048, 192, 128, 0, 1),
       ("dec scatter 16 into 64 tokens", "scatter", 128, 64, 16, 128, 1),
       ("dec layer_norm 8320x128", "ln", 8320, 128, 0, 0, 5),
       ("dec linear qkv 8320x128->384", "lin", 8320, 128, 384, 0, 2),
       ("dec attention T65 H4 D32", "att", 128, 65, 128, 4, 2),
       ("dec linear proj+res 8320x128->128", "linres", 8320, 128, 128, 0, 2),
       ("dec linear fc1 8320x128->512", "lin", 8320, 128, 512, 0, 2),
       ("dec gelu 8320x512", "gelu", 8320, 512, 0, 0, 2),
       ("dec linear fc2+res 8320x512->128", "linres", 8320, 512, 128, 0, 2),
       ("dec linear pred 8192x128->48", "lin", 8192, 128, 48, 0, 1),
       ("loss mse 48 of 64 patches x48", "loss", 128, 64, 48, 48, 1)]


def rnd(*shape, grad=True):
    return (torch.rand(*shape) * 2 - 1).requires_grad_(grad)


def mae_op(kind, a, b, c, d):
    """A closure running the op forward, as torch_ref.py's MAE does it, on fresh leaf inputs."""
    if kind in ("lin", "linres"):
        lin = torch.nn.Linear(b, c)
        x, r = rnd(a, b), rnd(a, c)
        return (lambda: lin(x)) if kind == "lin" else (lambda: r + lin(x))
    if kind == "att":  # nn.MultiheadAttention's product part (F.multi_head_attention_forward)
        qkv, h, dh = rnd(a, b, 3 * c), d, c // d

        def att():
            q, k, v = qkv.transpose(0, 1).chunk(3, dim=-1)  # (T, B, C) each, as batch_first
            q = q.contiguous().view(b, a * h, dh).transpose(0, 1) / dh ** 0.5
            k = k.contiguous().view(b, a * h, dh).transpose(0, 1)
            v = v.contiguous().view(b, a * h, dh).transpose(0, 1)
            p = torch.softmax(torch.bmm(q, k.transpose(-2, -1)), dim=-1)
            o = torch.bmm(p, v).transpose(0, 1).contiguous().view(b * a, c)
            return o.view(b, a, c).transpose(0, 1)
        return att
    if kind == "ln":
        ln, x = torch.nn.LayerNorm(b, eps=1e-6), rnd(a, b)
        return lambda: ln(x)
    if kind == "gelu":
        x = rnd(a, b)
        return lambda: torch.nn.functional.gelu(x)
    ids = torch.rand(a, b).argsort(1)
    if kind == "gather":
        x, vis = rnd(a, b, d), ids[:, :c]
        return lambda: torch.gather(x, 1, vis[..., None].expand(-1, -1, d))
    if kind == "scatter":  # torch_ref.py: concat the mask tokens, gather in restore order
        x, tok, restore = rnd(a, c, d), rnd(1, 1, d), ids.argsort(1)

        def scatter():
            y = torch.cat([x, tok.expand(a, b - c, -1)], 1)
            return torch.gather(y, 1, restore[..., None].expand(-1, -1, d))
        return scatter
    pred, img = rnd(a, b, d), rnd(a, b, d, grad=False)  # loss: norm-pix MSE on masked patches
    mask = torch.zeros(a, b)
    mask.scatter_(1, ids[:, :c], 1.0)

    def loss():
        t = (img - img.mean(-1, keepdim=True)) / (img.var(-1, keepdim=True) + 1e-6).sqrt()
        return (((pred - t) ** 2).mean(-1) * mask).sum() / mask.sum()
    return loss


def bench_mae(reps=7):
    print(f"{'op':36s} {'fwd ms':>8s} {'f+b ms':>8s} {'count':>6s} {'step ms':>9s}")
    total = 0.0
    for name, kind, a, b, c, d, count in MAE:
        fn = mae_op(kind, a, b, c, d)
        y = fn()  # the output gradient, drawn off the clock
        g = torch.ones_like(y) if y.dim() == 0 else torch.rand_like(y) * 2 - 1
        tf, tb = [], []
        for r in range(reps + 1):
            t0 = CLOCK()
            with torch.no_grad():
                fn()
            tf.append(CLOCK() - t0)
            t0 = CLOCK()
            y = fn()
            y.backward(g)
            tb.append(CLOCK() - t0)
        f, fb = statistics.median(tf[1:]) * 1e3, statistics.median(tb[1:]) * 1e3
        total += fb * count
        print(f"{name:36s} {f:8.3f} {fb:8.3f} {count:6d} {fb * count:9.2f}")
    print(f"{'total':36s} {'':8s} {'':8s} {'':6s} {total:9.2f}")


def main():
    global CLOCK
    ap = argparse.ArgumentParser()
    ap.add_argument("--fmnist", action="store_true")
    ap.add_argument("--mae", action="store_true")
    ap.add_argument("--cpu-clock", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.cpu_clock:
        CLOCK = time.process_time
    if a.mae:
        print(f"PyTorch {torch.__version__}, {a.threads} threads, mae-vitt step's ops (batch 128); "
              f"median of 7 after 1 warm-up, {'CPU time' if a.cpu_clock else 'wall clock'}")
        bench_mae()
        return
    print(f"PyTorch {torch.__version__}, {a.threads} threads, batch {a.batch}; "
          "median of 7 after 1 warm-up")
    print(f"{'conv2d (GFLOP/s)':36s} {'fwd':>7s} {'fwd+bwd':>9s} {'fwd ms':>8s} {'f+b ms':>8s}")
    for layer in (FMNIST if a.fmnist else R18):
        bench(*layer, a.batch)


if __name__ == "__main__":
    main()
