"""Python reference for cellino's data benches (`crates/cellino-data/benches/data_pipeline.rs`):
the same files decoded with tifffile / Pillow / numpy, and the same Cell-DINO multi-crop
(2 x 224 + 8 x 96, defaults of cellino's `CellAugmentation`) with numpy + torch, fed by a torch
DataLoader with 0 workers (`t1`, one thread) or 2 workers (`t2`). Prints `<bench name> <median
seconds per iteration>` lines keyed like the criterion benches, so `cargo xtask bench` can show
the ratio.

    cargo bench -p cellino-data --bench data_pipeline   # writes target/bench-data/ once
    python3 xtask/py/bench_data_pipeline.py --data target/bench-data

The crop steps follow cellino's fused order, which is the upstream order with the same result:
divide by the dtype range, zero one removed channel and rescale the protein channel only on the
crop's region (the protein rescale uses the whole image's maximum), then bilinear resize
(antialias off, torchvision 0.15 behaviour), flips, per-channel brightness and contrast with
factor max(N(1, 0.2), 0.5), clamp to [0, 1], and per-crop per-channel self-normalisation
(eps 1e-7). Random draws use numpy's generator (the values differ from cellino's; the work is
the same).
"""

import argparse
import csv
import math
import os
import statistics
import time

import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image

GLOBAL = (2, 224, (0.4, 1.0))
LOCAL = (8, 96, (0.005, 0.4))
RATIO = (3.0 / 4.0, 4.0 / 3.0)
PROTEIN = 1


def read_any(path):
    if path.endswith((".tif", ".tiff")):
        return tifffile.imread(path)
    if path.endswith(".npy"):
        return np.load(path)
    return np.asarray(Image.open(path))


def crop_params(rng, height, width, scale):
    area = height * width
    log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return 0, 0, height, width


def jitter(rng, channels):
    return torch.from_numpy(np.maximum(rng.normal(1.0, 0.2, channels), 0.5).astype(np.float32))[:, None, None]


def one_crop(x, channel_max, size, scale, rng):
    c, height, width = x.shape
    removed = None
    if c >= 4 and rng.random() <= 0.2:
        removed = int(rng.choice([k for k in range(min(c, 4)) if k != PROTEIN]))
    image_max = max(float(m) for k, m in enumerate(channel_max) if k != removed) if c > 0 else 0.0
    protein_factor = None
    if c > 1 and image_max != 0.0 and rng.random() <= 0.2:
        protein_factor = rng.uniform(0.0, 2.0) / image_max
    top, left, h, w = crop_params(rng, height, width, scale)
    region = x[:, top : top + h, left : left + w].clone()
    if removed is not None:
        region[removed] = 0.0
    if protein_factor is not None and PROTEIN < c:
        region[PROTEIN] *= protein_factor
    y = F.interpolate(region[None], size=(size, size), mode="bilinear", align_corners=False, antialias=False)[0]
    if rng.random() < 0.5:
        y = y.flip(-1)
    if rng.random() < 0.5:
        y = y.flip(-2)
    if float(y.max()) != 0.0:
        y = (y * jitter(rng, c)).clamp(0.0, 1.0)
    if float(y.max()) != 0.0:
        f = jitter(rng, c)
        y = (f * y + (1.0 - f) * y.mean(dim=(1, 2), keepdim=True)).clamp(0.0, 1.0)
    mean = y.mean(dim=(1, 2), keepdim=True)
    std = y.std(dim=(1, 2), keepdim=True, unbiased=False)
    return (y - mean) / (std + 1e-7)


class CellDinoCrops(torch.utils.data.Dataset):
    def __init__(self, paths, seed):
        self.paths, self.seed = paths, seed

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        raw = tifffile.imread(self.paths[index])
        x = torch.from_numpy(raw.astype(np.float32)) / float(np.iinfo(raw.dtype).max)
        channel_max = x.amax(dim=(1, 2)).tolist()
        rng = np.random.default_rng([self.seed, index])
        views = []
        for count, size, scale in (GLOBAL, LOCAL):
            views.append([one_crop(x, channel_max, size, scale, rng) for _ in range(count)])
        return views


def collate(items):
    # Crop-major like cellino's Batch: crop 0 of every image, then crop 1, ...
    out = []
    for group in range(2):
        count = len(items[0][group])
        out.append(torch.stack([items[i][group][k] for k in range(count) for i in range(len(items))]))
    return out


def median_time(fn, repeats, warmup=1):
    times = []
    for i in range(repeats + warmup):
        t0 = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="target/bench-data")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)

    names = {
        "u16_4page_none.tif": "cpu_decode_tiff_u16_4page_none",
        "u16_4page_lzw.tif": "cpu_decode_tiff_u16_4page_lzw",
        "u16_4page_deflate.tif": "cpu_decode_tiff_u16_4page_deflate",
        "u16_grey.png": "cpu_decode_png_u16_grey",
        "u8_rgba.png": "cpu_decode_png_u8_rgba",
        "u16_4ch.npy": "cpu_decode_npy_u16_4ch",
        "real_dsb2018_img2d.tif": "cpu_decode_tiff_u16_real_dsb2018",
    }
    for file, bench in names.items():
        path = os.path.join(args.data, "decode", file)
        if os.path.exists(path):
            secs = median_time(lambda: read_any(path).astype(np.float32), args.repeats * 5)
            print(f"{bench} {secs:.6f}", flush=True)

    fields = os.path.join(args.data, "fields")
    with open(os.path.join(fields, "manifest.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [os.path.join(fields, r["path"]) for r in rows]
    dataset = CellDinoCrops(paths, seed=3)
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=8, shuffle=False, num_workers=workers, collate_fn=collate,
            persistent_workers=workers > 0,
        )

        def epoch():
            for batch in loader:
                assert batch[0].shape[1:] == (4, 224, 224) and batch[1].shape[1:] == (4, 96, 96)

        secs = median_time(epoch, args.repeats)
        print(f"cpu_multicrop_t{max(workers, 1)} {secs:.6f}", flush=True)


if __name__ == "__main__":
    main()
