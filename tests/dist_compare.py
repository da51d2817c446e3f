#!/usr/bin/env python3
"""Compare two training checkpoints tensor by tensor (data-parallel equality tests).

usage: dist_compare.py A.safetensors B.safetensors [--exact | --init I.safetensors --tol T]

Every tensor of A must be in B with the same shape (and the metadata's step and epoch equal).
--exact: the same bytes. --init: what training changed, tensor by tensor: the change of A from
the initial checkpoint I against B's, |dA - dB| / max(|dB|, 1e-5 |B|, 5e-6 sqrt(n)) <= T
(Euclidean norms over the tensor's n values; a tensor that did not change must not change in A
either). A relative test of the updates stays sensitive to a
wrong gradient (a missing average, a missing rank's rows give errors of order 1), where one
on the values would be dominated by the initialisation. Prints the worst tensor and exits 1 on
a mismatch. Plain Python (no numpy): the tests run where only python3 is installed.
"""
import array
import json
import math
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        lo, hi = t["data_offsets"]
        if t["dtype"] != "F32":
            out[name] = (t["shape"], raw[base + lo:base + hi])
            continue
        a = array.array("f")
        a.frombytes(raw[base + lo:base + hi])
        out[name] = (t["shape"], a)
    return out, meta


def main():
    args = sys.argv[1:]
    exact = "--exact" in args
    tol = float(args[args.index("--tol") + 1]) if "--tol" in args else 1e-3
    init = load(args[args.index("--init") + 1])[0] if "--init" in args else None
    if not exact and init is None:
        print("usage: dist_compare.py A B [--exact | --init I --tol T]")
        return 2
    a, ma = load(args[0])
    b, mb = load(args[1])
    if set(a) != set(b):
        print("FAIL: tensor names differ: only in A %s, only in B %s"
              % (sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5]))
        return 1
    for key in ("step", "epoch"):
        if ma.get(key) != mb.get(key):
            print("FAIL: metadata %s differs: %s vs %s" % (key, ma.get(key), mb.get(key)))
            return 1
    worst, worst_name, n_changed = 0.0, None, 0
    for name in sorted(a):
        sa, da = a[name]
        sb, db = b[name]
        if sa != sb:
            print("FAIL: %s has shape %s vs %s" % (name, sa, sb))
            return 1
        if exact or not isinstance(da, array.array):
            if bytes(da) != bytes(db):
                print("FAIL: %s differs (bit-exact comparison)" % name)
                return 1
            continue
        d0 = init[name][1] if name in init else array.array("f", bytes(4 * len(da)))
        num = den = norm = 0.0
        for x, y, z in zip(da, db, d0):
            if x != x or y != y:
                print("FAIL: %s is not a number" % name)
                return 1
            num += (x - y) ** 2
            den += (y - z) ** 2
            norm += y * y
        if den == 0.0:
            if num != 0.0:
                print("FAIL: %s did not change in B but did in A" % name)
                return 1
            continue
        # Changes at rounding level (a bias before batch norm, a key bias of attention: no
        # gradient, yet moved by rounding, and Adam scales that noise up) are measured against
        # a floor: 1e-5 of the tensor, and 5e-6 per element (root mean square)
        n = len(da)
        den = max(den, 1e-10 * norm, n * 25e-12)
        n_changed += 1
        r = math.sqrt(num / den)
        if r > worst:
            worst, worst_name = r, name
    if exact:
        print("ok: %d tensors bit-identical" % len(a))
        return 0
    ok = worst <= tol
    print("%s: %d tensors (%d changed by training): worst relative difference of the change "
          "%.3g (%s), tolerance %g" % ("ok" if ok else "FAIL", len(a), n_changed, worst,
                                       worst_name, tol))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
