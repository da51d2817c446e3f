#!/usr/bin/env python3
"""PyTorch side of tests/weights_torch.sh (Debian's python3-torch + python3-torchvision).

  weights_torch.py data DIR                 write the PNG dataset (folder layout) the runs use
  weights_torch.py resnet FILE FEATS.npy W  torchvision ResNet-18 (CIFAR stem, 1 channel, base
                                            width W) loads FILE with strict=True; its eval-mode
                                            pooled features of the test images must match FEATS
  weights_torch.py vit FILE FEATS.npy       the same for a timm-named ViT (timm is not installed:
                                            a minimal module with timm's parameter names)
  weights_torch.py resnet_bn FILE FEATS.npy W B
                                            the same after recomputing every BatchNorm's
                                            statistics from the train images in batches of B
                                            (sslc --bn-stats): reset, then a train-mode pass per
                                            batch, averaged weighted by batch size
  weights_torch.py same A.safetensors B.safetensors PREFIX_A PREFIX_B
                                            tensors PREFIX_A* of A equal PREFIX_B* of B (bitwise)
Exit 0 when the check holds, 1 with the reason otherwise.
"""
import json, os, struct, sys
import numpy as np

MEAN, STD, SIZE = 0.5, 0.25, 16


def read_st(path):
    """A safetensors file as {name: numpy array}, and its metadata (no safetensors package)."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    types = {"F32": np.float32, "I64": np.int64, "F16": np.float16}
    out = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + a:8 + n + b], types[h["dtype"]]).reshape(h["shape"])
    return out, meta


def images(root, split):
    """The images of a split in the folder reader's (torchvision's) order."""
    from PIL import Image
    d = os.path.join(root, split)
    out = []
    for c in sorted(os.listdir(d)):
        for f in sorted(os.listdir(os.path.join(d, c))):
            out.append(np.asarray(Image.open(os.path.join(d, c, f)), np.uint8))
    return np.stack(out)


def write_data(root):
    from PIL import Image
    rng = np.random.RandomState(18)
    for split, per in (("train", 4), ("test", 3)):
        for c in range(2):
            d = os.path.join(root, split, f"class{c}")
            os.makedirs(d, exist_ok=True)
            for i in range(per):
                base = rng.randint(0, 256, (SIZE, SIZE))
                img = np.clip(base // 2 + 100 * c, 0, 255).astype(np.uint8)
                Image.fromarray(img, mode="L").save(os.path.join(d, f"{i:03d}.png"))


def test_inputs(root, split="test"):
    import torch
    x = images(root, split).astype(np.float32) / 255.0
    return torch.from_numpy((x - MEAN) / STD)[:, None]  # (N, 1, 16, 16)


def load_strict(model, path):
    import torch
    tensors, _ = read_st(path)
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
    return model.eval()


def resnet(width):
    """torchvision's ResNet-18 with sslc's CIFAR stem (conv1 3x3 stride 1, no max-pool) and
    1 input channel. sslc's `width` is torchvision's base width (inplanes, 64), not
    width_per_group (which only BasicBlock-less Bottleneck models may change): width 64 is
    torchvision.models.resnet18 itself, a narrower one is the same class with its layers made
    by torchvision's own _make_layer at width, 2x, 4x, 8x."""
    import torch.nn as nn
    import torchvision
    from torchvision.models.resnet import BasicBlock
    m = torchvision.models.resnet18(num_classes=10)
    if width != 64:
        m.inplanes = width
        m.bn1 = nn.BatchNorm2d(width)
        m.layer1 = m._make_layer(BasicBlock, width, 2)
        m.layer2 = m._make_layer(BasicBlock, width * 2, 2, stride=2)
        m.layer3 = m._make_layer(BasicBlock, width * 4, 2, stride=2)
        m.layer4 = m._make_layer(BasicBlock, width * 8, 2, stride=2)
    m.conv1 = nn.Conv2d(1, width, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    m.fc = nn.Identity()  # the backbone alone: the export has no fc.*
    return m


def vit():
    """timm's VisionTransformer layout and parameter names (patch_embed.proj, cls_token,
    pos_embed, blocks.N.norm1 / attn.qkv / attn.proj / norm2 / mlp.fc1 / mlp.fc2, norm): the
    module the encoder fixtures are made with (tests/fixtures/gen_encoder_fixtures.py), the cls
    token's output after the final norm as the pooled feature (timm global_pool='token')."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
    from gen_encoder_fixtures import ViT

    class Pooled(ViT):
        def forward(self, x):
            return super().forward(x)[0]

    return Pooled(img=16, p=4, c=1, d=32, depth=2, h=2)


def recompute_bn(model, x, batch):
    """torch.optim.swa_utils.update_bn's procedure written out: every BatchNorm reset
    (reset_running_stats), then one train-mode forward per batch with the momentum that makes
    the running statistics the average of the batches' statistics weighted by their sizes
    (update_bn itself weights every batch alike, momentum None: the same when batches are of
    one size; sslc's last batch may be shorter)."""
    import torch
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
    model.train()
    seen = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            b = min(batch, x.shape[0] - i)
            for m in bns:
                m.momentum = b / (seen + b)
            model(x[i:i + b])
            seen += b
    return model.eval()


def compare(model, path, feats_path, root, bn_batch=0):
    import torch
    torch.set_num_threads(1)
    load_strict(model, path)
    if bn_batch:
        recompute_bn(model, test_inputs(root, "train"), bn_batch)
    with torch.no_grad():
        ref = model(test_inputs(root)).numpy()
    got = np.load(feats_path)
    if got.shape != ref.shape:
        print(f"FAIL: sslc features {got.shape}, torch {ref.shape}")
        return 1
    # float32 through 17 convolutions (sslc: im2col + sgemm or Winograd; PyTorch: its own conv
    # kernels) and BatchNorm / LayerNorm: summation order and Winograd's transforms differ by
    # about 1e-6 relative per layer; 1e-4 of the features' scale bounds what they accumulate to
    # and is far below what one wrong tensor, channel or stem does (order 1e-1).
    scale = float(np.abs(ref).max())
    err = float(np.abs(got - ref).max())
    print(f"{os.path.basename(path)}: {ref.shape[0]} images x {ref.shape[1]}, "
          f"max |sslc - torch| {err:.3g} (features up to {scale:.3g})")
    if not err <= 1e-4 * max(scale, 1.0):
        print("FAIL: features differ")
        return 1
    return 0


def same(a_path, b_path, pa, pb):
    a, _ = read_st(a_path)
    b, _ = read_st(b_path)
    ka = sorted(k[len(pa):] for k in a if k.startswith(pa) and "num_batches_tracked" not in k)
    kb = sorted(k[len(pb):] for k in b if k.startswith(pb) and "num_batches_tracked" not in k)
    if not ka or ka != kb:
        print(f"FAIL: {a_path}:{pa}* has {len(ka)} tensors, {b_path}:{pb}* {len(kb)}")
        return 1
    bad = [k for k in ka if a[pa + k].shape != b[pb + k].shape or
           not np.array_equal(a[pa + k], b[pb + k])]
    if bad:
        print(f"FAIL: {len(bad)} tensors differ ({bad[:3]})")
        return 1
    print(f"{len(ka)} tensors equal: {a_path}:{pa}* and {b_path}:{pb}*")
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "data":
        write_data(sys.argv[2])
        sys.exit(0)
    root = os.environ["WEIGHTS_DATA"]
    if cmd == "resnet":
        sys.exit(compare(resnet(int(sys.argv[4])), sys.argv[2], sys.argv[3], root))
    if cmd == "resnet_bn":
        sys.exit(compare(resnet(int(sys.argv[4])), sys.argv[2], sys.argv[3], root,
                         int(sys.argv[5])))
    if cmd == "vit":
        sys.exit(compare(vit(), sys.argv[2], sys.argv[3], root))
    if cmd == "same":
        sys.exit(same(*sys.argv[2:6]))
    sys.exit(f"unknown command {cmd}")
