#!/usr/bin/env python3
"""Markdown table of training runs from their metrics.jsonl files (standard library only):
loss at the first and the last log point, epoch-mean loss of the last epoch, online kNN top-1
at initialisation and at the end, images/s and seconds of the last epoch.
Usage: python3 scripts/metrics_table.py runs/*/metrics.jsonl"""
import json
import os
import sys


def row(path):
    recs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    recs.append(json.loads(line))
                except ValueError as e:
                    sys.exit(f'{path} line {n}: {e}')
    steps = [r for r in recs if r.get('loss') is not None]
    epochs = [r for r in recs if 'loss_mean' in r]
    init = [r['knn_top1'] for r in recs if r.get('epoch') == 0 and 'knn_top1' in r]
    last_epoch = epochs[-1] if epochs else None
    pct = lambda v: '%.1f%%' % (100 * v)
    knn_end = last_epoch.get('knn_top1') if last_epoch else None
    return '| %s | %s | %s | %s | %s | %s → %s | %s | %s |' % (
        os.path.basename(os.path.dirname(os.path.abspath(path))),
        steps[-1]['step'] if steps else '-',
        '%.4g (step %d)' % (steps[0]['loss'], steps[0]['step']) if steps else '-',
        '%.4g' % steps[-1]['loss'] if steps else '-',
        '%.4g' % last_epoch['loss_mean'] if last_epoch and last_epoch['loss_mean'] is not None
        else '(no epoch yet)',
        pct(init[0]) if init else '-', pct(knn_end) if knn_end is not None else '-',
        '%.1f' % (last_epoch or steps[-1])['images_per_s'] if steps else '-',
        '%.0f' % last_epoch['epoch_s'] if last_epoch else '-')


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print('| run | steps | first loss | last loss | epoch mean | kNN init → end | img/s | epoch s |')
    print('|---|---|---|---|---|---|---|---|')
    for p in sys.argv[1:]:
        print(row(p))


if __name__ == '__main__':
    main()
