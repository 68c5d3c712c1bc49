"""PyTorch side of `cargo xtask bench`: the same workloads as cellino's criterion benches, timed
on the same machine, printed as `<bench name> <median seconds>` lines.

    DINOV2_PATH=/path/to/dinov2 python3 xtask/py/bench_vit_torch.py --dinov2 $DINOV2_PATH

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
    args = ap.parse_args()
    sys.path.insert(0, args.dinov2)
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    import dinov2.models.vision_transformer as vt

    device = torch.device("cuda" if args.device == "cuda" else "cpu")
    for in_chans in (1, 4):
        model = vt.vit_small(patch_size=16, img_size=224, in_chans=in_chans, init_values=1.0, block_chunks=0)
        model = model.eval().to(device)
        x = torch.randn(8, in_chans, 224, 224, device=device)
        times = []
        with torch.no_grad():
            for i in range(args.repeats + 2):
                t0 = time.perf_counter()
                model(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= 2:
                    times.append(time.perf_counter() - t0)
        print(f"{args.device}_vit_small_p16_b8_224_c{in_chans} {statistics.median(times):.6f}")

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
    print(f"{args.device}_vit_small_p16_b8_224_c4_fwdbwd {statistics.median(times):.6f}")


if __name__ == "__main__":
    main()
