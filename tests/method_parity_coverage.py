#!/usr/bin/env python3
"""Every shipped config has a step-parity fixture (tests/fixtures/methods/NAME.safetensors)
whose config composes the same method: the same encoder type, head types, loss type (and form),
optimizer, target type and LARS clip setting. A new config without a fixture, or a fixture that
drifted from its config, fails here.   method_parity_coverage.py SOURCE_DIR"""
import json, os, struct, sys


def fixture_config(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n))["__metadata__"]
    return json.loads(meta["config"])


def signature(cfg):
    model = cfg.get("model", {})
    losses = cfg["loss"] if isinstance(cfg["loss"], list) else [cfg["loss"]]
    opt = cfg.get("optim", {})
    return {
        # a preset (vit_tiny, vit_small) is the family's generic type at a fixed size
        "encoder": (model.get("encoder", {}).get("type") or "").split("_")[0],
        "heads": {k: v.get("type") for k, v in model.items() if k != "encoder" and isinstance(v, dict)},
        "loss": [(l.get("type"), l.get("form")) for l in losses],
        "optim": opt.get("name", "sgd"),
        "lars_clip_lr": opt.get("lars_clip_lr", True) if opt.get("name") == "lars" else None,
        "target": cfg.get("target", {}).get("type", "none"),
        # split BatchNorm (and MoCo v1's key shuffle with it) or not
        "split_bn": model.get("encoder", {}).get("bn_groups", 1) > 1,
    }


def main():
    src = sys.argv[1]
    bad = 0
    configs = sorted(f for f in os.listdir(os.path.join(src, "configs")) if f.endswith(".json"))
    for name in configs:
        fx = os.path.join(src, "tests", "fixtures", "methods", name[:-5] + ".safetensors")
        if not os.path.exists(fx):
            print(f"configs/{name}: no step-parity fixture {fx} (tests/fixtures/gen_method_fixtures.py)")
            bad += 1
            continue
        a = signature(json.load(open(os.path.join(src, "configs", name))))
        b = signature(fixture_config(fx))
        for k in a:
            if a[k] != b[k]:
                print(f"configs/{name}: {k} is {a[k]}, its fixture's config has {b[k]}")
                bad += 1
    print(f"{len(configs)} configs, {bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
