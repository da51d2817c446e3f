#!/usr/bin/env python3
"""One benchmark record (scripts/benchmark.sh): a run directory's resolved config and
metrics.jsonl plus the probe results -> docs/benchmarks/NAME.json.

  benchmark_record.py --refresh RUN RECORD   recompute what a record takes from its run
  directory alone (the encoder's name, the generative methods' test metrics), keeping the
  probe results: for records written by an older version of this script."""
import argparse, datetime, json, os, sys


def encoder_name(enc, blocks=1, unet=None, readout=None, network=None):
    """resnet18 w16; a custom ViT with its width, depth and patch (vit d128 L6 p4); with the
    probes' readout when it is not the pooled output (eval.blocks: ", last 4 blocks"); a
    diffusion model's U-Net with its readout (unet c32, mid@50); a PixelCNN's own network with
    its feature readout (pixelcnn c32 L8, layer 4; layer 6 max 4x4 for the readout 6/max4)."""
    if network is not None:
        if readout is None:
            g = network.get("feature_grid", 0)
            readout = f"{network.get('feature_layer', 4)}" + (f"/max{g}" if g else "")
        layer, _, grid = readout.partition("/max")
        r = f"layer {layer}" + (f" max {grid}x{grid}" if grid else "")
        return f"pixelcnn c{network.get('channels', 32)} L{network.get('layers', 8)}, {r}"
    if unet is not None:
        r = readout or f"{unet.get('readout_block', 'mid')}@{unet.get('readout_t', 50)}"
        return f"unet c{unet.get('channels', 32)}, {r}"
    name = enc.get("type", "")
    if "width" in enc:
        name += f" w{enc['width']}"
    if name == "vit":
        name += f" d{enc.get('dim')} L{enc.get('depth')} p{enc.get('patch_size')}"
    if blocks > 1 and enc.get("type") == "dcgan":
        name += f", last {blocks} layers max 4x4"
    elif blocks > 1:
        name += f", last {blocks} blocks"
    return name


def num(s):
    return None if s in (None, "", "null") else float(s)


def run_encoder(cfg, readout, blocks=0):
    """blocks > 0: the ViT readout the benchmark chose (--blocks), else the config's."""
    return encoder_name(cfg["model"].get("encoder", {}),
                        blocks or cfg.get("eval", {}).get("blocks", 1),
                        cfg["model"].get("unet"), readout, cfg["model"].get("network"))


def test_metrics(run):
    """The last epoch line's eval-split metrics of a generative method (test_nll,
    test_bits_per_dim, test_rec, test_kl; the tokenizer's test_rec_mse, test_perplexity,
    test_codes_used; test_images), without the "test_" prefix; {} for other methods."""
    last = {}
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                if "epoch_s" in r:
                    last = r
    return {k[5:]: v for k, v in last.items() if k.startswith("test_")}


def refresh(run, path):
    cfg = json.load(open(os.path.join(run, "config.json")))
    rec = json.load(open(path))
    chosen = rec.get("readout") or ""
    rec["encoder"] = run_encoder(cfg, chosen.split()[0] if chosen else None,
                                 rec.get("readout_blocks", 0) if chosen.startswith("blocks=") else 0)
    rec["test"] = test_metrics(run)
    rec["precision"] = cfg["train"].get("precision", "fp32")
    with open(path, "w") as f:
        json.dump(rec, f, indent=1)
        f.write("\n")
    print(f"{path}: encoder {rec['encoder']}, test {rec['test']}")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--refresh":
        return refresh(sys.argv[2], sys.argv[3])
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("out")
    ap.add_argument("--wall", type=float, required=True)
    ap.add_argument("--commit", required=True, help="the commit that trained the run")
    ap.add_argument("--probe-commit", default=None, help="the commit that probed it")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--overrides", default="")
    ap.add_argument("--knn", nargs=3, required=True)
    ap.add_argument("--init-knn", nargs=3, required=True)
    ap.add_argument("--linear", required=True)
    ap.add_argument("--init-linear", required=True)
    ap.add_argument("--zeroshot", default="null")
    ap.add_argument("--linear-lrs", default="1e-3")
    ap.add_argument("--pixels", nargs=4, required=True)
    ap.add_argument("--readout", default="", help="a diffusion model's or a PixelCNN's "
                    "readout chosen on validation (BLOCK@T, LAYER[/maxG]), and the validation "
                    "top-1 of each candidate")
    ap.add_argument("--blocks", type=int, default=0, help="the ViT readout chosen on "
                    "validation (its last N blocks); 0: the config's eval.blocks")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.run, "config.json")))
    readout = a.readout.split()[0] if a.readout else None
    loss = cfg["loss"] if isinstance(cfg["loss"], dict) else cfg["loss"][0]
    curve, elapsed, ips = [], 0.0, []
    with open(os.path.join(a.run, "metrics.jsonl")) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if "epoch_s" in r:
                elapsed += r["epoch_s"] or 0.0
                ips.append(r.get("images_per_s"))
            if r.get("knn_top1") is not None:
                curve.append([elapsed / 60.0, 100.0 * r["knn_top1"]])
    rec = {
        "name": os.path.basename(a.out)[:-5],
        "method": loss.get("type"), "form": loss.get("form"),
        "encoder": run_encoder(cfg, readout, a.blocks),
        "readout": a.readout or None,
        "readout_blocks": a.blocks or cfg.get("eval", {}).get("blocks", 1),
        "epochs": cfg["train"].get("epochs"), "batch_size": cfg["train"].get("batch_size"),
        "overrides": a.overrides, "wall_s": a.wall, "train_s": elapsed,
        "images_per_s": sorted(x for x in ips if x)[len(ips) // 2] if ips else None,
        "threads": a.threads,
        # the precision the run's steps ran in (its resolved config: "auto" is written resolved)
        "precision": cfg["train"].get("precision", "fp32"),
        "knn_best": num(a.knn[0]), "knn_best_at": a.knn[1], "knn_k200_t01": num(a.knn[2]),
        "linear": num(a.linear), "linear_lrs": a.linear_lrs,
        "init_knn_best": num(a.init_knn[0]), "init_knn_k200_t01": num(a.init_knn[2]),
        "init_linear": num(a.init_linear),
        "zeroshot": num(a.zeroshot),
        "pixels_knn_best": num(a.pixels[0]), "pixels_knn_best_at": a.pixels[1],
        "pixels_knn_k200_t01": num(a.pixels[2]), "pixels_linear": num(a.pixels[3]),
        "test": test_metrics(a.run),
        "knn_curve": curve, "commit": a.commit,
        "probe_commit": a.probe_commit if a.probe_commit != a.commit else None,
        "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
    }
    with open(a.out, "w") as f:
        json.dump(rec, f, indent=1)
        f.write("\n")
    print(f"{rec['name']}: kNN {rec['knn_k200_t01']} (init {rec['init_knn_k200_t01']}, pixels "
          f"{rec['pixels_knn_k200_t01']}), linear {rec['linear']} (init {rec['init_linear']}, "
          f"pixels {rec['pixels_linear']})")


if __name__ == "__main__":
    main()
