"""PyTorch side of `cargo xtask bench`: the same workloads as cellino's criterion benches, timed
on the same machine, printed as `<bench name> <median seconds>` lines.

    DINOV2_PATH=/path/to/dinov2 python3 xtask/py/bench_vit_torch.py --dinov2 $DINOV2_PATH
    python3 xtask/py/bench_vit_torch.py --dinov2 $DINOV2_PATH --peak-memory 8 4

`--peak-memory B C` instead prints `peak_rss_bytes N` and `forward_extra_bytes M`: the resident
high-water mark of the process during one ViT-S/16 inference forward at batch B with C channels,
and how far it rose above the resident size just before that forward, measured as cellino's
`forward_peak_memory` example does (one warm-up forward, reset `/proc/self/clear_refs`, one
forward, read VmHWM).

Upstream dinov2 (commit 7b187bd) is imported from the given checkout, never vendored.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("XFORMERS_DISABLED", "1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dinov2", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--peak-memory", type=int, nargs=2, metavar=("BATCH", "CHANNELS"))
    args = ap.parse_args()
    sys.path.insert(0, args.dinov2)
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    import dinov2.models.vision_transformer as vt

    device = torch.device("cuda" if args.device == "cuda" else "cpu")
    if args.peak_memory:
        peak_memory(vt, *args.peak_memory)
        return
    for batch, in_chans in ((8, 1), (8, 4), (32, 1), (32, 4)):
        model = vt.vit_small(patch_size=16, img_size=224, in_chans=in_chans, init_values=1.0, block_chunks=0)
        model = model.eval().to(device)
        x = torch.rand(batch, in_chans, 224, 224, device=device) * 2 - 1
        times = []
        with torch.no_grad():
            for i in range(args.repeats + 2):
                t0 = time.perf_counter()
                model(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= 2:
                    times.append(time.perf_counter() - t0)
        print(f"{args.device}_vit_small_p16_b{batch}_224_c{in_chans} {statistics.median(times):.6f}", flush=True)

    # Backbone forward + backward in training mode (drop path 0.1), as cellino's `…_c4_fwdbwd` bench:
    # gradient of the summed final-norm CLS with respect to every weight.
    model = vt.vit_small(
        patch_size=16, img_size=224, in_chans=4, init_values=1.0, block_chunks=0,
        drop_path_rate=0.1, drop_path_uniform=True,
    ).train().to(device)
    x = torch.randn(8, 4, 224, 224, device=device)
    times = []
    for i in range(max(args.repeats // 2, 3) + 1):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        model.forward_features(x)["x_norm_clstoken"].sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 1:
            times.append(time.perf_counter() - t0)
    print(f"{args.device}_vit_small_p16_b8_224_c4_fwdbwd {statistics.median(times):.6f}", flush=True)

    # The same plus an AdamW step over every backbone weight, as cellino-ssl's
    # `…_backbone_adamw_step_…` bench (lr and weight decay do not change the work).
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.04)
    times = []
    for i in range(max(args.repeats // 2, 3) + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        model.forward_features(x)["x_norm_clstoken"].sum().backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 1:
            times.append(time.perf_counter() - t0)
    print(f"{args.device}_backbone_adamw_step_vit_small_p16_b8_224_c4 {statistics.median(times):.6f}", flush=True)


def peak_memory(vt, batch, in_chans):
    import torch

    model = vt.vit_small(patch_size=16, img_size=224, in_chans=in_chans, init_values=1.0, block_chunks=0).eval()
    x = torch.rand(batch, in_chans, 224, 224) * 2 - 1
    def status_bytes(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) * 1024

    with torch.no_grad():
        model(x)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status_bytes("VmRSS")
        out = model(x)
    peak = status_bytes("VmHWM")
    print(f"peak_rss_bytes {peak}")
    print(f"forward_extra_bytes {peak - before}")
    del out


if __name__ == "__main__":
    main()
