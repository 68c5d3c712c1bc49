#!/usr/bin/env python3
"""PyTorch reference values for the fused ops of cellino-kernels.

How to run (from the repository root; torch only, no DINOv2 checkout needed):

    python xtask/py/make_kernel_fixtures.py

It (re)writes crates/cellino-kernels/tests/fixtures/ops/<op>.npz: the inputs, PyTorch's output,
an upstream gradient `gy` and PyTorch's gradients for every differentiable input, all float64
(the Rust test checks its f64 kernels tightly and its f32 kernels loosely). Sinkhorn-Knopp and
the KoLeo nearest neighbour are transcribed from DINOv2 (dinov2/loss/dino_clstoken_loss.py,
dinov2/loss/koleo_loss.py at 7b187bd) for one process. Fixed seeds, one thread: two runs give
identical files.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
DT = torch.float64


def rand(g, *shape, scale=1.0):
    return ((torch.rand(*shape, generator=g, dtype=DT) * 2 - 1) * scale).requires_grad_(True)


def with_grads(name, inputs, fn, g):
    out = fn(*inputs.values())
    gy = torch.rand(out.shape, generator=g, dtype=DT) * 2 - 1
    grads = torch.autograd.grad(out, list(inputs.values()), gy)
    arrays = {k: v.detach().numpy() for k, v in inputs.items()}
    arrays["out"] = out.detach().numpy()
    arrays["gy"] = gy.numpy()
    arrays.update({f"grad_{k}": gr.numpy() for k, gr in zip(inputs, grads)})
    return name, arrays


@torch.no_grad()
def sinkhorn_knopp_teacher(teacher_output, teacher_temp, n_iterations=3):
    # DINOHead's SinkhornKnopp centring, world size 1.
    teacher_output = teacher_output.float() if teacher_output.dtype != DT else teacher_output
    Q = torch.exp(teacher_output / teacher_temp).t()
    B = Q.shape[1]
    K = Q.shape[0]
    Q /= torch.sum(Q)
    for _ in range(n_iterations):
        Q /= torch.sum(Q, dim=1, keepdim=True)
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


def pairwise_nns_inner(x):
    # KoLeoLoss.pairwise_NNs_inner
    dots = torch.mm(x, x.t())
    n = x.shape[0]
    dots.view(-1)[:: (n + 1)].fill_(-1)
    _, indices = torch.max(dots, dim=1)
    return indices


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="crates/cellino-kernels/tests/fixtures/ops")
    out = Path(p.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(2024)
    cases = []

    x = rand(g, 5, 96, scale=2.0)
    with torch.no_grad():
        x += torch.arange(5, dtype=DT)[:, None] * 10  # rows with large means
    cases.append(with_grads("layer_norm", {"x": x, "weight": rand(g, 96), "bias": rand(g, 96)},
                            lambda x, w, b: F.layer_norm(x, (96,), w, b, eps=1e-6), g))
    cases.append(with_grads("softmax", {"x": rand(g, 4, 197, scale=8.0)}, lambda x: F.softmax(x, dim=-1), g))
    for tag, (nq, nk, hd) in {"vit": (197, 197, 8), "cross": (5, 300, 4)}.items():
        qkv = {"q": rand(g, 1, 2, nq, hd, scale=2.0), "k": rand(g, 1, 2, nk, hd, scale=2.0), "v": rand(g, 1, 2, nk, hd)}
        cases.append(with_grads(f"attention_{tag}", qkv,
                                lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=hd ** -0.5), g))
    cases.append(with_grads("gelu", {"x": rand(g, 1000, scale=6.0)}, lambda x: F.gelu(x, approximate="none"), g))
    cases.append(with_grads("linear", {"x": rand(g, 3, 5, 7), "weight": rand(g, 4, 7), "bias": rand(g, 4)}, F.linear, g))
    x = rand(g, 6, 9)
    with torch.no_grad():
        x[0] = 0
        x[1] *= 1e-9
    cases.append(with_grads("l2_normalize", {"x": x}, lambda x: F.normalize(x, dim=-1, eps=1e-6), g))

    logits = torch.rand(16, 300, generator=g, dtype=DT) * 2 - 1
    cases.append(("sinkhorn", {"logits": logits.numpy(), "out": sinkhorn_knopp_teacher(logits, 0.04, 3).numpy()}))
    x = F.normalize(torch.rand(33, 12, generator=g, dtype=DT) * 2 - 1, dim=-1)
    cases.append(("nearest_neighbor", {"x": x.numpy(), "out": pairwise_nns_inner(x).numpy().astype(np.uint32)}))

    for name, arrays in cases:
        np.savez(out / f"{name}.npz", **arrays)
        print(f"{name}: {', '.join(f'{k}{list(v.shape)}' for k, v in arrays.items())}")


if __name__ == "__main__":
    main()
