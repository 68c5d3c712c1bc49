"""Writes samples/examplefly_cells.npy: 4 real Drosophila Kc167 cells (CellProfiler ExampleFly,
BSD-3-Clause), 3 channels (DNA, FITC, rhodamine), 64x64 crops centred on nuclei, as float32
(4, 3, 64, 64) after the Cell-DINO evaluation normalisation (x/255, then per-image per-channel
(x - mean) / (std + 1e-7)).

    pip install numpy pillow
    python3 xtask/py/make_sample.py --examplefly <dir with 01_POS002_{D,F,R}.TIF> --nuclei <nuclei_examplefly_kc167.csv>
"""

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 64


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--examplefly", required=True)
    ap.add_argument("--nuclei", required=True)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "samples/examplefly_cells.npy"))
    args = ap.parse_args()
    field = "01_POS002"
    planes = [np.asarray(Image.open(Path(args.examplefly) / f"{field}_{c}.TIF"), dtype=np.float32) for c in "DFR"]
    stack = np.stack(planes)  # (3, H, W), raw 8-bit intensities
    rows = [r for r in csv.DictReader(open(args.nuclei)) if r["image"] == field and int(r["area_px"]) > 150]
    half = SIZE // 2
    crops, used = [], []
    for r in rows:
        y, x = int(round(float(r["centroid_y"]))), int(round(float(r["centroid_x"])))
        if half <= y < stack.shape[1] - half and half <= x < stack.shape[2] - half:
            crops.append(stack[:, y - half:y + half, x - half:x + half])
            used.append(r["label"])
        if len(crops) == 4:
            break
    batch = np.stack(crops) / 255.0
    mean = batch.mean(axis=(2, 3), keepdims=True)
    std = batch.std(axis=(2, 3), keepdims=True)
    batch = ((batch - mean) / (std + 1e-7)).astype(np.float32)
    np.save(args.out, batch)
    print(args.out, batch.shape, "nucleus labels", used)


if __name__ == "__main__":
    main()
