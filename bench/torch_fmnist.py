#!/usr/bin/env python3
"""PyTorch peer of `sslc bench configs/simclr.json`: the default Fashion-MNIST SimCLR config's
model, loss, optimizer and batch (ResNet-18 CIFAR stem at width 16 on 1x28x28, two views,
projector 256-512(BN, ReLU)-128, NT-Xent tau 0.2, SGD momentum 0.9, weight decay 1e-4, batch
128), timed the same way as ../shared/bench/torch_ref.py times its workloads: one fixed batch,
one warm-up step, median of the timed steps. Prints the same one-line format. PRECISION=bf16 in
the environment runs forward and loss under torch.autocast('cpu', bfloat16), as torch_ref.py.
Run with Debian's interpreter: /usr/bin/python3 bench/torch_fmnist.py [batch] [steps]
"""
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get('THREADS', '2')))
torch.manual_seed(0)


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


def resnet18_cifar(width, cin):
    layers = [nn.Conv2d(cin, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    c = width
    for i, w in enumerate([width, 2 * width, 4 * width, 8 * width]):
        layers += [Basic(c, w, 1 if i == 0 else 2), Basic(w, w, 1)]
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), c


class SimCLR(nn.Module):
    def __init__(self, width=16, cin=1, hidden=512, out=128):
        super().__init__()
        self.enc, d = resnet18_cifar(width, cin)
        self.proj = nn.Sequential(nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                  nn.Linear(hidden, out))

    def forward(self, x1, x2, tau=0.2):
        z = F.normalize(self.proj(self.enc(torch.cat([x1, x2]))), dim=1)
        n = x1.shape[0]
        sim = z @ z.t() / tau
        sim.fill_diagonal_(-1e9)
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        return F.cross_entropy(sim, target)


def main():
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    model = SimCLR()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x1, x2 = torch.randn(batch, 1, 28, 28), torch.randn(batch, 1, 28, 28)
    model.train()
    times = []
    bf16 = os.environ.get('PRECISION', 'fp32') == 'bf16'
    for i in range(steps + 1):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if bf16:
            with torch.autocast('cpu', dtype=torch.bfloat16):
                loss = model(x1, x2).float()
        else:
            loss = model(x1, x2)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
        assert math.isfinite(loss.item())
    med = statistics.median(times)
    maps = open('/proc/self/maps').read()
    blas = ('netlib-reference(slow)' if '/blas/libblas' in maps else 'openblas-pthread'
            if 'openblas-pthread' in maps else 'openblas-openmp' if 'openblas-openmp' in maps
            else 'unknown')
    print(f'simclr-fmnist batch={batch} threads={torch.get_num_threads()} '
          f'precision={"bf16" if bf16 else "fp32"} step_s={med:.3f} '
          f'img_per_s={batch / med:.1f} loss={loss.item():.4f} blas={blas}')


if __name__ == '__main__':
    main()
