#!/usr/bin/env python3
"""The layers of DESIGN.md, checked on the built objects and the sources.

usage: layers.py SRC_DIR OBJECT...   (the objects of libsslc, $<TARGET_OBJECTS:ssl_objs>)

1. Symbols (nm): an object of layer L may only use functions and data defined in L itself or in
   a layer L may depend on (ALLOWED below).
2. Includes: a source file of layer L may only include the internal headers ("X/....h") of the
   layers L may depend on.
3. No circles between the files of a layer: the file-to-file graph of each layer (an edge when
   one object uses a symbol another defines) has no cycle, so each helper lives in the file of
   its level and a reader can take the files in order (src/train's trainer -> zeroshot ->
   embed -> trainer was one). Groups of files that are one unit by design (core's engine) are
   listed in UNITS.

Prints every violation, naming the files and the symbols, and exits 1 if there is any.
"""
import collections
import os
import re
import subprocess
import sys

# Who may use whom (besides itself). DESIGN.md "Layers of the code": data, io and eval depend on
# core only; nn on core; the modules (models, heads, losses) on nn and below; methods on the
# modules; train on everything below it. io, data and eval are bottom utilities the upper layers
# read files and masks and take eigendecompositions through.
BOTTOM = {"core"}
ALLOWED = {
    "core": set(),
    "data": BOTTOM,
    "io": BOTTOM,
    "eval": BOTTOM,
    "nn": BOTTOM | {"io"},
    "models": BOTTOM | {"nn", "io"},
    "heads": BOTTOM | {"nn", "io", "models"},
    "losses": BOTTOM | {"nn", "io", "heads"},
    "methods": BOTTOM | {"nn", "io", "data", "eval", "models", "heads", "losses"},
    "train": BOTTOM | {"nn", "io", "data", "eval", "models", "heads", "losses", "methods"},
}

# Files of one layer that form one unit on purpose and may call each other: core is one engine
# (the context and tape of tensor.c, the op table and its kernels, the BLAS and bf16 backends
# that read the context's precision), so its files are not checked against each other.
UNITS = [
    ("core", re.compile(r".*")),
]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)


def layer_of(obj):
    m = re.search(r"/src/([a-z_]+)/([A-Za-z0-9_]+)\.c\.o$", obj)
    return (m.group(1), m.group(2)) if m else (None, None)


def symbols(objs):
    out = subprocess.run(["nm", "-A"] + objs, capture_output=True, text=True, check=True).stdout
    defined, used = {}, collections.defaultdict(set)
    for line in out.splitlines():
        m = re.match(r"^(.*?):\s*(?:[0-9a-fA-F]+)?\s+([A-Za-z])\s+(\S+)$", line)
        if not m:
            continue
        obj, kind, sym = m.groups()
        if kind == "U":
            used[obj].add(sym)
        elif kind.isupper() and kind not in "UVW":
            defined[sym] = obj
        elif kind in "VW":
            defined.setdefault(sym, obj)
    return defined, used


def unit(layer, name):
    for ul, rx in UNITS:
        if ul == layer and rx.match(name):
            return "<unit>"
    return name


def cycles(graph):
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out, n = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = n[0]
        n[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = n[0]
                    n[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    src, objs = sys.argv[1], [o for a in sys.argv[2:] for o in a.split(";") if o]
    bad = []
    defined, used = symbols(objs)
    files = collections.defaultdict(lambda: collections.defaultdict(set))  # layer: a -> b: syms
    for obj in objs:
        la, fa = layer_of(obj)
        if la is None:
            continue
        if la not in ALLOWED:
            bad.append(f"src/{la}/: a directory that is no layer of DESIGN.md (add it to ALLOWED)")
            continue
        for sym in sorted(used[obj]):
            dobj = defined.get(sym)
            if not dobj:
                continue  # a system library's
            lb, fb = layer_of(dobj)
            if lb == la:
                ua, ub = unit(la, fa), unit(la, fb)
                if ua != ub:
                    files[la][ua].add(ub)
                    files[la][(ua, ub)].add(sym)
            elif lb not in ALLOWED[la]:
                bad.append(f"src/{la}/{fa}.c uses {sym} of src/{lb}/{fb}.c: {la} may not "
                           f"depend on {lb}")
    for la, g in sorted(files.items()):
        graph = {k: v for k, v in g.items() if isinstance(k, str)}
        for comp in cycles(graph):
            edges = [f"{a} -> {b} ({', '.join(sorted(g[(a, b)])[:3])})" for a in comp
                     for b in sorted(graph.get(a, ())) if b in comp]
            bad.append(f"src/{la}/: files that call each other in a circle: {', '.join(comp)}: "
                       + "; ".join(edges))
    for la in sorted(ALLOWED):
        d = os.path.join(src, "src", la)
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not f.endswith((".c", ".h")):
                continue
            text = open(os.path.join(d, f), encoding="utf-8").read()
            for inc in INCLUDE.findall(text):
                if inc != la and inc not in ALLOWED[la] and inc in ALLOWED:
                    bad.append(f"src/{la}/{f} includes an internal header of {inc}: {la} may "
                               f"not depend on {inc}")
    for b in bad:
        print("layers:", b)
    if not bad:
        print(f"layers: {len(objs)} objects, {sum(len(u) for u in used.values())} uses: "
              "dependencies point down only, no circles within a layer")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
