#!/usr/bin/env python3
"""Side-by-side training-step benchmark: sslc against PyTorch on the same machine, in one run.

For each workload, runs `sslc bench` and the PyTorch peer alternately, ROUNDS times each, every
run a fresh process; reads images/s from each one's output line and the peak RSS of each child
from the kernel (wait4), then prints a table: median images/s of each, the median of the
per-round ratios, sslc's achieved GFLOP/s and share of the sgemm peak measured in its own run,
and the peak RSS of both. Uses only the standard library (run with Debian's /usr/bin/python3,
which has python3-torch for the peers).

  /usr/bin/python3 bench/side_by_side.py [--rounds 3] [--steps 5] [--threads 2]
        [--sslc build/sslc] [--torch-ref ../shared/bench/torch_ref.py] [WORKLOAD...]

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
    ap.add_argument('--sslc', default=os.path.join(ROOT, 'build', 'sslc'))
    ap.add_argument('--torch-ref', default=os.path.join(ROOT, '..', 'shared', 'bench',
                                                        'torch_ref.py'))
    a = ap.parse_args()
    env = dict(os.environ, THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    rows = []
    for w in a.workloads:
        if w == 'simclr-fmnist':
            ours = [a.sslc, 'bench', os.path.join(ROOT, 'configs', 'simclr.json')]
            theirs = ['/usr/bin/python3', os.path.join(HERE, 'torch_fmnist.py'), str(a.batch),
                      str(a.steps)]
        else:
            ours = [a.sslc, 'bench', w]
            theirs = ['/usr/bin/python3', a.torch_ref, w, str(a.batch), str(a.steps)]
        ours += ['--batch', str(a.batch), '--steps', str(a.steps), '--threads', str(a.threads)]
        r = {'ours': [], 'theirs': [], 'ratio': [], 'gflops': [], 'gemm': [], 'pct': [],
             'peak': [], 'rss_ours': [], 'rss_theirs': []}
        for i in range(a.rounds):
            o, rss_o = run(ours, env)
            t, rss_t = run(theirs, env)
            r['ours'].append(field(o, 'img_per_s'))
            r['theirs'].append(field(t, 'img_per_s'))
            r['ratio'].append(r['ours'][-1] / r['theirs'][-1])
            r['gflops'].append(field(o, 'model_gflops'))
            r['gemm'].append(field(o, 'gemm_gflops'))
            r['pct'].append(field(o, 'pct_peak'))
            r['peak'].append(field(o, 'sgemm_peak'))
            r['rss_ours'].append(rss_o)
            r['rss_theirs'].append(rss_t)
            print(f'# {w} round {i + 1}: sslc {r["ours"][-1]:.1f} img/s, PyTorch '
                  f'{r["theirs"][-1]:.1f} img/s, ratio {r["ratio"][-1]:.2f}', file=sys.stderr,
                  flush=True)
        rows.append((w, {k: statistics.median(v) for k, v in r.items()}))
    print(f'| workload | sslc img/s | PyTorch img/s | ratio (median of {a.rounds}) | '
          'sslc model GFLOP/s | sslc GEMM GFLOP/s | sgemm peak GFLOP/s | model % of peak | '
          'peak RSS sslc / PyTorch (MiB) |')
    print('|---|---|---|---|---|---|---|---|---|')
    for w, m in rows:
        print(f'| {w} | {m["ours"]:.1f} | {m["theirs"]:.1f} | {m["ratio"]:.2f} | '
              f'{m["gflops"]:.0f} | {m["gemm"]:.0f} | {m["peak"]:.0f} | {m["pct"]:.0f}% | '
              f'{m["rss_ours"]:.0f} / {m["rss_theirs"]:.0f} |')


if __name__ == '__main__':
    main()
