#!/usr/bin/env python3
"""Generate the PyTorch reference fixtures for cellino's DINOv2 port.

How to run (from the repository root):

    pip install -r xtask/py/requirements.txt
    # upstream DINOv2 source at commit 7b187bd (any checkout/export of that tree works)
    git clone https://github.com/facebookresearch/dinov2 /tmp/dinov2
    git -C /tmp/dinov2 checkout 7b187bd
    python xtask/py/make_vit_fixtures.py --dinov2 /tmp/dinov2

It (re)writes, under --out-root (default: the repository root):

    crates/cellino-vit/tests/fixtures/<variant>/...   (model weights, inputs, outputs)
    crates/cellino-kernels/tests/fixtures/bicubic/... (pos-embed bicubic resize cases)

Upstream code is imported from --dinov2 (put on sys.path), never copied.
XFORMERS_DISABLED=1 is set before the import, so the pure-torch code paths run.
Everything is float32 on CPU, single-threaded, with fixed seeds: two runs give
byte-identical files.  See xtask/py/README.md for the file layout.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
from functools import partial
from pathlib import Path

os.environ["XFORMERS_DISABLED"] = "1"  # must precede any dinov2 import

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

DINOV2_COMMIT = "7b187bd4df8efce2cbcbbb67bd01532c19bf4c9c"

EMBED_DIM = 96
DEPTH = 4
NUM_HEADS = 4
MLP_RATIO = 4.0
IMG_SIZE = 224
INIT_VALUES = 1.0  # LayerScale present (gammas are re-randomised anyway)

# Every variant: name, model kwargs, weights format, inputs {tag: shape}.
VARIANTS = [
    dict(
        name="rgb_p14",
        seed=1001,
        in_chans=3, patch_size=14, num_register_tokens=0, ffn_layer="mlp", block_chunks=0,
        interpolate_offset=0.1, interpolate_antialias=False, bag_of_channels=False,
        weights="sharded_safetensors",
        inputs={"sq224": (2, 3, 224, 224), "nonsq": (2, 3, 98, 154)},
    ),
    dict(
        name="boc_p16_offset",
        seed=1002,
        in_chans=1, patch_size=16, num_register_tokens=0, ffn_layer="mlp", block_chunks=0,
        interpolate_offset=0.1, interpolate_antialias=False, bag_of_channels=True,
        weights="safetensors",
        inputs={"s224": (2, 5, 224, 224), "s160": (2, 5, 160, 160), "s384": (1, 5, 384, 384)},
    ),
    dict(
        # Same seed as boc_p16_offset => identical weights and inputs; only the
        # pos-embed interpolation mode differs.
        name="boc_p16_antialias",
        seed=1002,
        in_chans=1, patch_size=16, num_register_tokens=0, ffn_layer="mlp", block_chunks=0,
        interpolate_offset=0.0, interpolate_antialias=True, bag_of_channels=True,
        weights="safetensors",
        inputs={"s224": (2, 5, 224, 224), "s160": (2, 5, 160, 160), "s384": (1, 5, 384, 384)},
    ),
    dict(
        name="reg4_c4",
        seed=1004,
        in_chans=4, patch_size=16, num_register_tokens=4, ffn_layer="mlp", block_chunks=0,
        interpolate_offset=0.0, interpolate_antialias=True, bag_of_channels=False,
        weights="safetensors",
        inputs={"sq224": (2, 4, 224, 224), "nonsq": (2, 4, 160, 224), "s96": (2, 4, 96, 96)},
    ),
    dict(
        name="chunked_teacher",
        seed=1005,
        in_chans=4, patch_size=16, num_register_tokens=0, ffn_layer="mlp", block_chunks=4,
        interpolate_offset=0.1, interpolate_antialias=False, bag_of_channels=False,
        weights="teacher_pth",
        inputs={"sq224": (2, 4, 224, 224), "s160": (2, 4, 160, 160)},
    ),
    dict(
        name="swiglu_p14",
        seed=1006,
        in_chans=3, patch_size=14, num_register_tokens=0, ffn_layer="swiglufused", block_chunks=0,
        interpolate_offset=0.1, interpolate_antialias=False, bag_of_channels=False,
        weights="hub_pth",
        inputs={"sq224": (2, 3, 224, 224), "s112": (2, 3, 112, 112)},
    ),
]

WEIGHT_FILE = {
    "sharded_safetensors": "model.safetensors.index.json",
    "safetensors": "model.safetensors",
    "teacher_pth": "teacher_checkpoint.pth",
    "hub_pth": "model.pth",
}

BICUBIC_SEED = 2001
BICUBIC_OFFSET = 0.1
BICUBIC_CASES_14 = [(10, 10), (6, 6), (24, 24), (7, 11), (11, 7), (14, 20), (1, 1), (3, 5)]
BICUBIC_CASES_16 = [("offset", 37, 37), ("antialias", 37, 37), ("offset", 8, 8)]


# --------------------------------------------------------------------------- helpers


def _normal_(t, gen, std, mean=0.0):
    t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float32) * std + mean)


def _uniform_(t, gen, lo, hi):
    t.copy_(torch.rand(t.shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo)


@torch.no_grad()
def randomize_(module, gen):
    """Overwrite every parameter of `module` with the fixture distributions.

    Linear / patch-embed conv: weight N(0, .05), bias N(0, .05); LayerNorm:
    weight 1+N(0, .1), bias N(0, .1); LayerScale gamma U(.5, 1.5); tokens and
    pos_embed N(0, .5); weight-norm g (DINO head) U(.5, 1.5).
    """
    from dinov2.layers.layer_scale import LayerScale

    done = set()
    for _, m in module.named_modules():
        own = dict(m.named_parameters(recurse=False))
        if not own:
            continue
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            for pname, p in own.items():
                if pname == "weight_g":
                    _uniform_(p, gen, 0.5, 1.5)
                else:  # weight, weight_v, bias
                    _normal_(p, gen, 0.05)
                done.add(id(p))
        elif isinstance(m, torch.nn.LayerNorm):
            _normal_(m.weight, gen, 0.1, mean=1.0)
            _normal_(m.bias, gen, 0.1)
            done.update({id(m.weight), id(m.bias)})
        elif isinstance(m, LayerScale):
            _uniform_(m.gamma, gen, 0.5, 1.5)
            done.add(id(m.gamma))
        else:  # the ViT itself: cls_token, pos_embed, register_tokens, mask_token
            for pname, p in own.items():
                assert pname in ("cls_token", "pos_embed", "register_tokens", "mask_token"), pname
                _normal_(p, gen, 0.5)
                done.add(id(p))
    missed = [n for n, p in module.named_parameters() if id(p) not in done]
    assert not missed, f"parameters not randomised: {missed}"


def build_vit(v, embed_dim=EMBED_DIM, depth=DEPTH, num_heads=NUM_HEADS, img_size=IMG_SIZE):
    from dinov2.layers import MemEffAttention, NestedTensorBlock as Block
    from dinov2.models.vision_transformer import DinoVisionTransformer

    model = DinoVisionTransformer(
        img_size=img_size,
        patch_size=v["patch_size"],
        in_chans=v["in_chans"],
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=MLP_RATIO,
        init_values=INIT_VALUES,
        block_fn=partial(Block, attn_class=MemEffAttention),  # as the hub vit_* factories
        ffn_layer=v["ffn_layer"],
        block_chunks=v["block_chunks"],
        num_register_tokens=v["num_register_tokens"],
        interpolate_offset=v["interpolate_offset"],
        interpolate_antialias=v["interpolate_antialias"],
        channel_adaptive=v["bag_of_channels"],
    )
    return model.eval()


def save_npy(path, t):
    arr = np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32, copy=False))
    np.save(path, arr, allow_pickle=False)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def clean_dir(d):
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)


# --------------------------------------------------------------------------- weights


def save_weights(v, model, d):
    sd = {k: t.detach().contiguous() for k, t in model.state_dict().items()}
    kind = v["weights"]
    if kind == "safetensors":
        save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    elif kind == "sharded_safetensors":
        first = lambda k: not (k.startswith("blocks.2.") or k.startswith("blocks.3.") or k.startswith("norm."))
        shards = {
            "model-00001-of-00002.safetensors": {k: t for k, t in sd.items() if first(k)},
            "model-00002-of-00002.safetensors": {k: t for k, t in sd.items() if not first(k)},
        }
        weight_map = {}
        for fname, part in shards.items():
            save_file(part, str(d / fname), metadata={"format": "pt"})
            weight_map.update({k: fname for k in part})
        total = sum(t.numel() * t.element_size() for t in sd.values())
        write_json(
            d / "model.safetensors.index.json",
            {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
        )
    elif kind == "hub_pth":
        torch.save(model.state_dict(), d / "model.pth")
    elif kind == "teacher_pth":
        from dinov2.layers.dino_head import DINOHead

        gen = torch.Generator().manual_seed(v["seed"] + 500)
        head = DINOHead(in_dim=EMBED_DIM, out_dim=128, nlayers=3, hidden_dim=64, bottleneck_dim=32)
        randomize_(head, gen)
        # same structure as dinov2 train.py do_test(): {"teacher": model.teacher.state_dict()}
        teacher = torch.nn.ModuleDict({"backbone": model, "dino_head": head})
        torch.save({"teacher": teacher.state_dict()}, d / "teacher_checkpoint.pth")
    else:
        raise ValueError(kind)


def load_weights(v, d):
    """Read the weights file back the way a consumer would; returns the backbone state dict."""
    kind = v["weights"]
    if kind == "safetensors":
        return load_file(str(d / "model.safetensors"))
    if kind == "sharded_safetensors":
        index = json.loads((d / "model.safetensors.index.json").read_text())
        sd = {}
        for fname in sorted(set(index["weight_map"].values())):
            sd.update(load_file(str(d / fname)))
        assert set(sd) == set(index["weight_map"])
        assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in sd.values())
        return sd
    if kind == "hub_pth":
        return torch.load(d / "model.pth", map_location="cpu", weights_only=True)
    if kind == "teacher_pth":
        ckpt = torch.load(d / "teacher_checkpoint.pth", map_location="cpu", weights_only=True)
        t = ckpt["teacher"]
        head_keys = sorted(k for k in t if k.startswith("dino_head."))
        expect = {
            "dino_head.mlp.0.weight": (64, 96), "dino_head.mlp.0.bias": (64,),
            "dino_head.mlp.2.weight": (64, 64), "dino_head.mlp.2.bias": (64,),
            "dino_head.mlp.4.weight": (32, 64), "dino_head.mlp.4.bias": (32,),
            "dino_head.last_layer.weight_g": (128, 1), "dino_head.last_layer.weight_v": (128, 32),
        }
        assert {k: tuple(t[k].shape) for k in head_keys} == expect, head_keys
        assert all(k.startswith("backbone.") or k.startswith("dino_head.") for k in t)
        return {k[len("backbone."):]: x for k, x in t.items() if k.startswith("backbone.")}
    raise ValueError(kind)


# --------------------------------------------------------------------------- forward


def run_outputs(v, model, x):
    """Returns {suffix: tensor} for one input."""
    out = {}
    if v["bag_of_channels"]:
        B, C, H, W = x.shape
        # Upstream BoC path: get_intermediate_layers reshapes (B,C,H,W)->(B*C,1,H,W)
        # and returns per block (patch (B,C,N,D), cls (B,C*D)).
        (patch_bcnd, cls_bcd), = model.get_intermediate_layers(x, n=1, return_class_token=True, norm=True)
        assert patch_bcnd.shape[:2] == (B, C) and cls_bcd.shape == (B, C * EMBED_DIM)
        # == eval/cell_dino create_linear_input(..., avgpool=True, use_n_blocks=1), split in two halves
        out["boc_cls"] = cls_bcd
        out["boc_avgpool"] = torch.mean(patch_bcnd, dim=-2).reshape(B, -1)
        ff = model.forward_features(x.reshape(B * C, 1, H, W))
        out["cls"] = ff["x_norm_clstoken"]
        torch.testing.assert_close(out["cls"].reshape(B, -1), cls_bcd, rtol=1e-5, atol=1e-5)
        return out

    ff = model.forward_features(x)
    out["cls"] = ff["x_norm_clstoken"]
    out["patch"] = ff["x_norm_patchtokens"]
    if v["num_register_tokens"] > 0:
        out["reg"] = ff["x_norm_regtokens"]
    out["prenorm"] = ff["x_prenorm"]
    inter = model.get_intermediate_layers(x, n=2, return_class_token=True, norm=True)
    assert len(inter) == 2
    out["inter_patch"] = torch.stack([p for p, _ in inter])
    out["inter_cls"] = torch.stack([c for _, c in inter])
    torch.testing.assert_close(out["inter_patch"][-1], out["patch"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["inter_cls"][-1], out["cls"], rtol=1e-5, atol=1e-5)
    return out


def make_variant(v, root):
    d = root / "crates/cellino-vit/tests/fixtures" / v["name"]
    clean_dir(d)
    gen = torch.Generator().manual_seed(v["seed"])
    model = build_vit(v)
    randomize_(model, gen)
    save_weights(v, model, d)

    # Round trip: a fresh model loaded from the written file must give identical outputs.
    reloaded = build_vit(v)
    sd = load_weights(v, d)
    reloaded.load_state_dict(sd, strict=True)

    config = {
        "embed_dim": EMBED_DIM,
        "depth": DEPTH,
        "num_heads": NUM_HEADS,
        "mlp_ratio": MLP_RATIO,
        "patch_size": v["patch_size"],
        "in_chans": v["in_chans"],
        "num_register_tokens": v["num_register_tokens"],
        "ffn_layer": v["ffn_layer"],
        "img_size": IMG_SIZE,
        "block_chunks": v["block_chunks"],
        "interpolate_offset": v["interpolate_offset"],
        "interpolate_antialias": v["interpolate_antialias"],
        "weights": WEIGHT_FILE[v["weights"]],
        "inputs": list(v["inputs"]),
        "bag_of_channels": v["bag_of_channels"],
        "dinov2_commit": DINOV2_COMMIT,
    }
    write_json(d / "config.json", config)

    results = {}
    for tag, shape in v["inputs"].items():
        x = torch.randn(shape, generator=gen, dtype=torch.float32)
        save_npy(d / f"{tag}.input.npy", x)
        with torch.no_grad():
            outs = run_outputs(v, model, x)
            outs2 = run_outputs(v, reloaded, x)
        for k in outs:
            assert torch.equal(outs[k], outs2[k]), f"{v['name']}/{tag}.{k}: reload mismatch"
            save_npy(d / f"{tag}.{k}.npy", outs[k])
        results[tag] = outs
    return results


# --------------------------------------------------------------------------- bicubic


def dinov2_resize(grid, h0, w0, offset, antialias):
    """Run upstream DinoVisionTransformer.interpolate_pos_encoding on `grid` (1,D,M,M).

    Returns the resized patch grid as (1, D, h0, w0); checked against the direct
    F.interpolate call that upstream makes.
    """
    _, D, M, _ = grid.shape
    p = 16
    v = dict(patch_size=p, in_chans=1, ffn_layer="mlp", block_chunks=0, num_register_tokens=0,
             interpolate_offset=offset, interpolate_antialias=antialias, bag_of_channels=False)
    vit = build_vit(v, embed_dim=D, depth=1, num_heads=1, img_size=M * p)
    with torch.no_grad():
        vit.pos_embed.zero_()
        vit.pos_embed[0, 1:] = grid[0].permute(1, 2, 0).reshape(M * M, D)
        tokens = torch.zeros(1, 1 + h0 * w0, D)
        # prepare_tokens_with_masks does `B, nc, w, h = x.shape` and calls
        # interpolate_pos_encoding(x, w, h): its "w" is the image height.
        pe = vit.interpolate_pos_encoding(tokens, h0 * p, w0 * p)
    out = pe[0, 1:].reshape(h0, w0, D).permute(2, 0, 1).unsqueeze(0).contiguous()

    if offset:
        direct = F.interpolate(grid, scale_factor=((h0 + offset) / M, (w0 + offset) / M),
                               mode="bicubic", antialias=antialias)
    else:
        direct = F.interpolate(grid, size=(h0, w0), mode="bicubic", antialias=antialias)
    assert torch.equal(out, direct), (h0, w0, offset, antialias)
    return out


def make_bicubic(root):
    d = root / "crates/cellino-kernels/tests/fixtures/bicubic"
    clean_dir(d)
    gen = torch.Generator().manual_seed(BICUBIC_SEED)
    grids = {
        "grid.npy": torch.randn((1, 8, 14, 14), generator=gen, dtype=torch.float32),
        "grid16.npy": torch.randn((1, 8, 16, 16), generator=gen, dtype=torch.float32),
    }
    for name, g in grids.items():
        save_npy(d / name, g)
    modes = {"offset": (BICUBIC_OFFSET, False), "antialias": (0.0, True)}
    todo = [("grid.npy", m, h0, w0) for (h0, w0) in BICUBIC_CASES_14 for m in modes]
    todo += [("grid16.npy", m, h0, w0) for (m, h0, w0) in BICUBIC_CASES_16]
    cases = []
    for gname, mode, h0, w0 in todo:
        offset, antialias = modes[mode]
        g = grids[gname]
        out = dinov2_resize(g, h0, w0, offset, antialias)
        fname = f"{mode}_{h0}x{w0}.npy"
        assert fname not in {c["file"] for c in cases}, fname
        save_npy(d / fname, out)
        M = g.shape[-1]
        cases.append({
            "file": fname, "grid": gname, "mode": mode, "offset": offset, "antialias": antialias,
            "h0": h0, "w0": w0, "M": M,
            "call": (f"F.interpolate(grid, scale_factor=(({h0}+{offset})/{M}, ({w0}+{offset})/{M}), "
                     f"mode='bicubic', antialias={antialias})" if offset else
                     f"F.interpolate(grid, size=({h0}, {w0}), mode='bicubic', antialias={antialias})"),
        })
    write_json(d / "cases.json", {"dinov2_commit": DINOV2_COMMIT, "torch_version": torch.__version__,
                                  "cases": cases})


# --------------------------------------------------------------------------- main


def sha_tree(dirs):
    h = {}
    for base in dirs:
        for p in sorted(base.rglob("*")):
            if p.is_file():
                h[str(p.relative_to(base.parent))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return h


def make_bad_files(root):
    """Files that must be refused with a clear error (no tensors inside a valid torch archive)."""
    d = root / "crates/cellino-vit/tests/fixtures/bad"
    d.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 3, "note": "no tensors here"}, d / "no_tensors.pth")


def main():
    here = Path(__file__).resolve()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dinov2", required=True, help="path to a dinov2 checkout (commit 7b187bd)")
    ap.add_argument("--out-root", default=str(here.parents[2]), help="repository root to write into")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(args.dinov2).resolve()))
    import warnings

    warnings.filterwarnings("ignore", message="xFormers is")
    warnings.filterwarnings("ignore", category=FutureWarning)
    import dinov2.models.vision_transformer as vt

    assert "channel_adaptive" in Path(vt.__file__).read_text(), "dinov2 checkout too old (no channel_adaptive)"

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    root = Path(args.out_root).resolve()

    all_results = {}
    for v in VARIANTS:
        all_results[v["name"]] = make_variant(v, root)
        print(f"wrote {v['name']}")
    make_bicubic(root)
    print("wrote bicubic")
    make_bad_files(root)
    print("wrote bad")

    # The two BoC variants share weights and inputs: their outputs must differ
    # (and only) because of the pos-embed interpolation mode.
    a, b = all_results["boc_p16_offset"], all_results["boc_p16_antialias"]
    for tag in a:
        diffs = {k: float((a[tag][k] - b[tag][k]).abs().max()) for k in a[tag]}
        print(f"boc offset-vs-antialias max|diff| {tag}: " + ", ".join(f"{k}={x:.3e}" for k, x in diffs.items()))

    fx = [root / "crates/cellino-vit/tests/fixtures", root / "crates/cellino-kernels/tests/fixtures"]
    digest = hashlib.sha256(json.dumps(sha_tree(fx), sort_keys=True).encode()).hexdigest()
    print(f"fixtures tree sha256: {digest}")


if __name__ == "__main__":
    main()
