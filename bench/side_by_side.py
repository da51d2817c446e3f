#!/usr/bin/env python3
"""Side-by-side training-step benchmark: sslc against PyTorch on the same machine, in one run.

For each workload, runs `sslc bench` and the PyTorch peer alternately, ROUNDS times each, every
run a fresh process; reads images/s from each one's output line and the peak RSS of each child
from the kernel (wait4), then prints a table: median images/s of each, the median of the
per-round ratios, sslc's achieved GFLOP/s and share of the sgemm peak measured in its own run,
and the peak RSS of both. Uses only the standard library (run with Debian's /usr/bin/python3,
which has python3-torch for the peers).

  /usr/bin/python3 bench/side_by_side.py [--rounds 3] [--steps 5] [--threads 2]
        [--precision fp32|bf16] [--peer-precision fp32|bf16] [--cpu-clock]
        [--sslc build/sslc] [--torch-ref ../shared/bench/torch_ref.py] [WORKLOAD...]

--precision runs sslc bench --precision P (docs/precision.md) and the peer with PRECISION=P
(torch.autocast bf16); --peer-precision sets the peer's alone (e.g. sslc bf16 against PyTorch
fp32). The share of the peak is of the peak of sslc's precision (sgemm or oneDNN bf16 matmul).
The peer's BLAS (blas= in its line) is printed; a netlib reference BLAS is refused.
--cpu-clock: images per CPU second of each process instead of per wall-clock second (sslc's
cpu_s; the peer's step timed with time.process_time): on a busy machine at --threads 1, each
side's speed without the time it waited for a core.

WORKLOADs: simclr-r18, mae-vitt (PyTorch: torch_ref.py), simclr-fmnist (sslc: configs/
simclr.json on a batch of its own data; PyTorch: bench/torch_fmnist.py). Default: all three.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, env):
    """Run cmd, return (stdout, peak RSS in MiB) or raise with its output."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{out}")
    return out, ru.ru_maxrss / 1024.0


def field(out, key):
    m = re.search(r'\b' + key + r'=([0-9.]+)', out)
    if not m:
        raise SystemExit(f'no {key}= in:\n{out}')
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('workloads', nargs='*', default=['simclr-r18', 'mae-vitt', 'simclr-fmnist'])
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    ap.add_argument('--peer-precision', choices=['fp32', 'bf16'], default=None)
    ap.add_argument('--cpu-clock', action='store_true')
    ap.add_argument('--sslc', default=os.path.join(ROOT, 'build', 'sslc'))
    ap.add_argument('--torch-ref', default=os.path.join(ROOT, '..', 'shared', 'bench',
                                                        'torch_ref.py'))
    a = ap.parse_args()
    env = dict(os.environ, THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads),
               PRECISION=a.peer_precision or a.precision)
    rows = []
    for w in a.workloads:
        if w == 'simclr-fmnist':
            ours = [a.sslc, 'bench', os.path.join(ROOT, 'configs', 'simclr.json')]
            theirs = ['/usr/bin/python3', os.path.join(HERE, 'torch_fmnist.py'), str(a.batch),
                      str(a.steps)]
        else:
            ours = [a.sslc, 'bench', w]
            theirs = ['/usr/bin/python3', a.torch_ref, w, str(a.batch), str(a.steps)]
        ours += ['--batch', str(a.batch), '--steps', str(a.steps), '--threads', str(a.threads),
                 '--precision', a.precision]
        if a.cpu_clock:  # the peer's step clock becomes its process's CPU time
            theirs[1:2] = ['-c', 'import runpy, sys, time; time.perf_counter = time.process_time;'
                           ' sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], '
                           'run_name="__main__")', theirs[1]]
        r = {'ours': [], 'theirs': [], 'ratio': [], 'gflops': [], 'gemm': [], 'pct': [],
             'peak': [], 'rss_ours': [], 'rss_theirs': []}
        for i in range(a.rounds):
            o, rss_o = run(ours, env)
            t, rss_t = run(theirs, env)
            m = re.search(r'\bblas=(\S+)', t)
            blas = m.group(1) if m else 'unknown'
            if 'netlib' in blas:
                raise SystemExit(f'the PyTorch peer loaded the slow reference BLAS ({blas}): '
                                 'point libblas.so.3 at openblas-openmp (update-alternatives)')
            r.setdefault('blas', set()).add(blas)
            r['ours'].append(a.batch / field(o, 'cpu_s') if a.cpu_clock
                             else field(o, 'img_per_s'))
            r['theirs'].append(field(t, 'img_per_s'))
            r['ratio'].append(r['ours'][-1] / r['theirs'][-1])
            if a.cpu_clock:  # GFLOP per CPU second; the peak is wall clock: no share of it
                r['gflops'].append(field(o, 'model_gflop_per_step') / field(o, 'cpu_s'))
                r['gemm'].append(field(o, 'gemm_gflop_per_step') / field(o, 'cpu_s'))
                r['pct'].append(float('nan'))
            else:
                r['gflops'].append(field(o, 'model_gflops'))
                r['gemm'].append(field(o, 'gemm_gflops'))
                r['pct'].append(field(o, 'pct_peak'))
            r['peak'].append(field(o, 'bf16_peak' if a.precision == 'bf16' else 'sgemm_peak'))
            r['rss_ours'].append(rss_o)
            r['rss_theirs'].append(rss_t)
            print(f'# {w} round {i + 1}: sslc {r["ours"][-1]:.1f} img/s, PyTorch '
                  f'{r["theirs"][-1]:.1f} img/s, ratio {r["ratio"][-1]:.2f}', file=sys.stderr,
                  flush=True)
        blas = ', '.join(sorted(r.pop('blas')))
        rows.append((w, {k: statistics.median(v) for k, v in r.items()}, blas))
    peer = a.peer_precision or a.precision
    print(f'sslc {a.precision}, PyTorch {peer}, {a.threads} threads, batch {a.batch}'
          + (', images per CPU second' if a.cpu_clock else ''))
    print(f'| workload | sslc img/s | PyTorch img/s | ratio (median of {a.rounds}) | '
          f'sslc model GFLOP/s | sslc GEMM GFLOP/s | {a.precision} peak GFLOP/s | '
          'model % of peak | peak RSS sslc / PyTorch (MiB) | PyTorch BLAS |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for w, m, blas in rows:
        print(f'| {w} | {m["ours"]:.1f} | {m["theirs"]:.1f} | {m["ratio"]:.2f} | '
              f'{m["gflops"]:.0f} | {m["gemm"]:.0f} | {m["peak"]:.0f} | '
              f'{"-" if m["pct"] != m["pct"] else format(m["pct"], ".0f") + "%"} | '
              f'{m["rss_ours"]:.0f} / {m["rss_theirs"]:.0f} | {blas} |')


if __name__ == '__main__':
    main()
