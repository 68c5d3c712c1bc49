#!/usr/bin/env python3
"""Generate the transform-parity fixtures of `crates/cellino-data` (tests/data/transforms/).

The deterministic parts of the Cell-DINO transforms, computed by PyTorch / torchvision exactly as
upstream dinov2 (commit 7b187bd, `dinov2/data/cell_dino/transforms.py`) calls them:

- bilinear resize: torchvision `F.resize(..., BILINEAR, antialias=False)` (= `F.interpolate(
  mode="bilinear", align_corners=False, antialias=False)`), and `F.resized_crop` as
  `RandomResizedCrop` applies it (antialias off, as at the pinned torchvision 0.15);
- bicubic resize of the shorter side: `transforms.Resize(size, BICUBIC, antialias=False)`, and a
  plain `F.interpolate(mode="bicubic")` to a given size;
- centre crop with zero padding: `F.center_crop` (half-to-even rounding of the offsets);
- `RandomCrop(pad_if_needed=True)` padding (both sides by the deficit);
- `SelfNormalizeNoDiv` (population std, eps 1e-7);
- `adjust_brightness` / `adjust_contrast` with a fixed factor, as `RandomBrightness` /
  `RandomContrast` apply them per channel;
- the whole evaluation transform `Div255 -> Resize(bicubic) -> CenterCrop -> SelfNormalizeNoDiv`
  on a uint8 image.

Pinned versions (the committed files were written with exactly these):

    torch==2.15.0  torchvision==0.29.2  numpy==2.4.6

No torchvision release is built for torch 2.15 (0.29.2 is the newest, built for torch 2.14); the
functions used here are pure Python on top of torch, so install it without its dependencies:

    python -m venv --system-site-packages /tmp/tvvenv      # reuses the installed torch/numpy
    /tmp/tvvenv/bin/pip install --no-deps torchvision==0.29.2
    /tmp/tvvenv/bin/python xtask/py/make_data_fixtures.py

It (re)writes `crates/cellino-data/tests/data/transforms/*.npy` and `cases.json` (about 0.7 MB).
Every output is float32 (C, H, W). Deterministic: fixed seed, one CPU thread; running it twice
gives byte-identical files.
"""

import json
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "cellino-data" / "tests" / "data" / "transforms"

torch.set_num_threads(1)
rng = np.random.default_rng(20260401)


class Div255(torch.nn.Module):  # upstream dinov2/data/cell_dino/transforms.py
    def forward(self, x):
        return x / 255


class SelfNormalizeNoDiv(torch.nn.Module):  # upstream, verbatim
    def forward(self, x):
        m = x.mean((-2, -1), keepdim=True)
        s = x.std((-2, -1), unbiased=False, keepdim=True)
        x -= m
        x /= s + 1e-7
        return x


def save(name, t):
    arr = t.detach().cpu().numpy()
    assert arr.dtype == np.float32 and arr.ndim == 3, (name, arr.dtype, arr.shape)
    np.save(OUT / name, np.ascontiguousarray(arr))
    return name


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.npy"):
        old.unlink()
    cases = []

    x = torch.from_numpy(rng.random((4, 37, 53), dtype=np.float32))
    x01 = x.clone()
    save("input_f32.npy", x01)
    # A channel with a wide range and negative values, to exercise the kernels' extrapolation.
    x[2] = x[2] * 4.0 - 1.5
    save("input_wide.npy", x)
    big = torch.from_numpy(rng.random((1, 150, 140), dtype=np.float32))
    save("input_big.npy", big)
    xu8 = torch.from_numpy(rng.integers(0, 256, size=(3, 45, 61), dtype=np.uint8))
    np.save(OUT / "input_u8.npy", xu8.numpy())

    bil = InterpolationMode.BILINEAR
    bic = InterpolationMode.BICUBIC
    # torch's float bilinear kernel depends on the call: out_h + out_w <= 128, or one thread with
    # 3 channels, take a channels-last kernel; everything else (all Cell-DINO crops: 224 or 96
    # px, 1 or 4 channels) the generic one, which cellino reproduces bit for bit. The
    # "channels_last" cases document the ulp-level difference of the other kernel.
    for name, inp, h, w in [
        ("input_wide.npy", x, 64, 80),
        ("input_wide.npy", x, 96, 40),
        ("input_big.npy", big, 70, 65),
        ("input_big.npy", big, 33, 100),
    ]:
        out = F.resize(inp, [h, w], interpolation=bil, antialias=False)
        ref = torch.nn.functional.interpolate(inp[None], size=(h, w), mode="bilinear", align_corners=False, antialias=False)[0]
        assert torch.equal(out, ref)
        cases.append({"op": "bilinear", "input": name, "size": [h, w], "output": save(f"bilinear_{h}x{w}.npy", out)})
    out = F.resize(x, [24, 24], interpolation=bil, antialias=False)
    cases.append({"op": "bilinear", "kernel": "channels_last", "input": "input_wide.npy", "size": [24, 24], "output": save("bilinear_cl_24x24.npy", out)})
    for top, left, h, w, size in [(10, 20, 100, 90, 96), (0, 0, 150, 140, 70), (40, 30, 7, 9, 66)]:
        out = F.resized_crop(big, top, left, h, w, [size, size], interpolation=bil, antialias=False)
        cases.append(
            {
                "op": "resized_crop",
                "input": "input_big.npy",
                "region": [top, left, h, w],
                "size": [size, size],
                "output": save(f"resized_crop_{top}_{left}_{h}x{w}_{size}.npy", out),
            }
        )
    for s in [20, 48]:
        out = transforms.Resize(s, interpolation=bic, antialias=False)(x)
        cases.append({"op": "resize_shorter_bicubic", "input": "input_wide.npy", "size": s, "output": save(f"bicubic_shorter_{s}.npy", out)})
    out = torch.nn.functional.interpolate(x[None], size=(29, 41), mode="bicubic", align_corners=False)[0]
    cases.append({"op": "bicubic", "input": "input_wide.npy", "size": [29, 41], "output": save("bicubic_29x41.npy", out)})
    for h, w in [(20, 20), (40, 60), (30, 60), (36, 52)]:
        out = F.center_crop(x, [h, w])
        cases.append({"op": "center_crop", "input": "input_wide.npy", "size": [h, w], "output": save(f"center_crop_{h}x{w}.npy", out)})
    # RandomCrop(size, pad_if_needed=True).forward, up to the random offsets.
    th, tw = 40, 60
    padded = x
    if padded.shape[2] < tw:
        padded = F.pad(padded, [tw - padded.shape[2], 0], 0, "constant")
    if padded.shape[1] < th:
        padded = F.pad(padded, [0, th - padded.shape[1]], 0, "constant")
    cases.append({"op": "pad_for_crop", "input": "input_wide.npy", "size": [th, tw], "output": save("pad_for_crop_40x60.npy", padded)})

    cases.append({"op": "self_normalize", "input": "input_wide.npy", "output": save("self_normalize.npy", SelfNormalizeNoDiv()(x.clone()))})
    # As RandomBrightness / RandomContrast apply a drawn factor to each channel.
    for op, factor in [("brightness", 1.3), ("contrast", 0.6), ("contrast", 1.7)]:
        y = x01.clone()
        for ch in range(y.shape[0]):
            if op == "brightness":
                y[ch] = F.adjust_brightness(y[ch], factor)
            else:
                y[ch] = F.adjust_contrast(y[ch][None, ...], factor)
        cases.append({"op": op, "input": "input_f32.npy", "factor": factor, "output": save(f"{op}_{factor}.npy", y)})

    # make_classification_eval_cell_transform(resize_size=32, crop_size=40), on a uint8 image
    # given as float raw values (as the decoders give it).
    ev = transforms.Compose(
        [Div255(), transforms.Resize(32, interpolation=bic, antialias=False), transforms.CenterCrop(40), SelfNormalizeNoDiv()]
    )
    out = ev(xu8.float())
    cases.append({"op": "eval_center", "input": "input_u8.npy", "resize": 32, "crop": 40, "output": save("eval_center_r32_c40.npy", out)})

    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__, "cases": cases}
    (OUT / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(cases)} cases, {total / 1e6:.2f} MB to {OUT}")


if __name__ == "__main__":
    main()
