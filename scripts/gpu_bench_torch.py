#!/usr/bin/env python3
"""The throughput work of `cellino selftest` in plain PyTorch, and one table with the ratios.

Times, for ViT-S/16 and ViT-L/16 written here in plain torch (the dinov2 architecture: patch conv,
CLS + pos-embed, pre-norm blocks with LayerScale, erf-GELU MLP, final norm; random weights):

* embed: forward of a batch, final-norm CLS + patch tokens, under inference_mode;
* train_step (ViT-S only): forward, loss mean(cls^2) + mean(patch^2) in f32, backward, AdamW
  (lr 1e-4, wd 0.04) on f32 weights;

in f32 and bf16 (torch.autocast, f32 master weights), with two attentions: `eager` is dinov2's own
`Attention` (q k^T, softmax, @ v: what dinov2 runs without xformers), `sdpa` is
F.scaled_dot_product_attention (flash / memory-efficient kernels). The work list and batch size
follow the rows of the cellino JSON (`--cellino`), so both sides do the same jobs.

Usage (scripts/gpu-check.sh calls it):
    python3 gpu_bench_torch.py --cellino cellino.json [--out torch.json] [--budget 5]
    python3 gpu_bench_torch.py --device cpu --batch 2 --quick   # a smoke test without a GPU
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = {"vit_s16": (384, 12, 6), "vit_b16": (768, 12, 12), "vit_l16": (1024, 24, 16)}


class Attention(nn.Module):
    def __init__(self, dim, heads, sdpa):
        super().__init__()
        self.heads, self.scale, self.sdpa = heads, (dim // heads) ** -0.5, sdpa
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.sdpa:
            x = F.scaled_dot_product_attention(q, k, v)
        else:  # dinov2/layers/attention.py, Attention.forward
            attn = (q * self.scale) @ k.transpose(-2, -1)
            x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim, heads, sdpa, init_values=1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, sdpa)
        self.ls1 = nn.Parameter(init_values * torch.ones(dim))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.ls2 = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        x = x + self.ls1 * self.attn(self.norm1(x))
        return x + self.ls2 * self.fc2(F.gelu(self.fc1(self.norm2(x))))  # erf GELU


class ViT(nn.Module):
    def __init__(self, dim, depth, heads, sdpa, patch=16, img=224, chans=3):
        super().__init__()
        self.patch_embed = nn.Conv2d(chans, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 1e-6)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + (img // patch) ** 2, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, sdpa) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x[:, 0], x[:, 1:]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(step, device, warmup, min_iters, max_iters, budget):
    for _ in range(warmup):
        step()
    sync(device)
    t0, n = time.perf_counter(), 0
    while n < max_iters and (n < min_iters or time.perf_counter() - t0 < budget):
        step()
        n += 1
    sync(device)
    return (time.perf_counter() - t0) / n, n


def bench(job, attn, device, args):
    dim, depth, heads = ARCHS[job["model"]]
    torch.manual_seed(0)
    model = ViT(dim, depth, heads, sdpa=(attn == "sdpa")).to(device)
    x = torch.randn(job["batch"], 3, 224, 224, device=device)
    bf16 = job["dtype"] == "bf16"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    warmup, min_iters, max_iters = (1, 2, 20) if args.quick else (3, 10, 200)
    if job["work"] == "embed":
        model.eval()

        def step():
            with torch.inference_mode(), autocast:
                cls, patches = model(x)
                return torch.cat([cls.unsqueeze(1), patches], 1)

    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.04)

        def step():
            with autocast:
                cls, patches = model(x)
            loss = cls.float().pow(2).mean() + patches.float().pow(2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    secs, n = time_it(step, device, warmup, min_iters, max_iters, args.budget)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return job["batch"] / secs, secs * 1e3, n


def default_jobs(args):
    jobs = []
    for dtype in ("f32", "bf16"):
        jobs.append({"model": "vit_s16", "work": "embed", "dtype": dtype, "batch": args.batch})
        if not args.quick:
            jobs.append({"model": "vit_l16", "work": "embed", "dtype": dtype, "batch": args.batch})
        jobs.append({"model": "vit_s16", "work": "train_step", "dtype": dtype, "batch": args.batch})
    return jobs


def fmt(x, digits=1):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


# Targets of issue 8 (cellino / torch eager, same GPU, same run).
TARGETS = {("vit_l16", "embed", "bf16"): 0.8, ("vit_s16", "train_step", "bf16"): 0.7, ("vit_s16", "train_step", "f32"): 0.7}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cellino", help="cellino selftest --json output: its bench rows set the jobs")
    p.add_argument("--out", help="write the torch numbers (and the ratios) as JSON")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=64, help="batch without --cellino")
    p.add_argument("--budget", type=float, default=5.0, help="seconds of timed runs per job")
    p.add_argument("--attention", default="eager,sdpa", help="comma list of eager, sdpa")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_bench_torch: torch sees no CUDA device; skipped", file=sys.stderr)
        return 2

    cellino = None
    if args.cellino:
        with open(args.cellino) as f:
            cellino = json.load(f)
    jobs = [
        {k: r[k] for k in ("model", "work", "dtype", "batch")} for r in (cellino or {}).get("bench", [])
    ] or default_jobs(args)
    mine = {(r["model"], r["work"], r["dtype"], r["batch"]): r for r in (cellino or {}).get("bench", [])}
    attns = [a for a in args.attention.split(",") if a]

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.version.__version__} on {name}; tf32 matmul {torch.backends.cuda.matmul.allow_tf32}",
          file=sys.stderr)
    rows = []
    for job in jobs:
        row = dict(job)
        for attn in attns:
            try:
                ips, ms, n = bench(job, attn, device, args)
                row[f"torch_{attn}_images_per_second"], row[f"torch_{attn}_ms"], row[f"torch_{attn}_iters"] = ips, ms, n
            except Exception as e:  # out of memory and the like: report, go on
                row[f"torch_{attn}_error"] = " ".join(str(e).split())[:200]
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            print(f"torch {job['model']} {job['work']} {job['dtype']} batch {job['batch']} {attn}: "
                  f"{fmt(row.get(f'torch_{attn}_images_per_second'))} img/s", file=sys.stderr)
        c = mine.get((job["model"], job["work"], job["dtype"], job["batch"]), {})
        row["cellino_images_per_second"] = c.get("images_per_second")
        for attn in attns:
            t, ci = row.get(f"torch_{attn}_images_per_second"), row["cellino_images_per_second"]
            row[f"ratio_vs_{attn}"] = ci / t if ci and t else None
        rows.append(row)

    # The table.
    print(f"\nthroughput on {name} (images/s, 224x224; ratio = cellino / torch; torch eager = dinov2 Attention)")
    head = f"  {'model':<8} {'work':<10} {'dtype':<5} {'batch':>5} {'cellino':>9}"
    for attn in attns:
        head += f" {'torch ' + attn:>11} {'ratio':>6}"
    print(head + "  target")
    missed = []
    for r in rows:
        line = f"  {r['model']:<8} {r['work']:<10} {r['dtype']:<5} {r['batch']:>5} {fmt(r['cellino_images_per_second']):>9}"
        for attn in attns:
            line += f" {fmt(r.get(f'torch_{attn}_images_per_second')):>11} {fmt(r.get(f'ratio_vs_{attn}'), 2):>6}"
        target = TARGETS.get((r["model"], r["work"], r["dtype"]))
        if target is not None and "eager" in attns:
            ratio = r.get("ratio_vs_eager")
            verdict = "n/a" if ratio is None else "met" if ratio >= target else "MISSED"
            line += f"  >= {target} vs eager: {verdict}"
            if verdict == "MISSED":
                missed.append(f"{r['model']} {r['work']} {r['dtype']} ({ratio:.2f})")
        print(line)
    if cellino is not None:
        bad = [f"{r['op']}/{r['implementation']}/{r['dtype']}" for r in cellino.get("parity", []) if not r.get("pass")]
        smoke = cellino.get("smoke", {})
        print(f"cellino parity: {'all ok' if not bad else 'FAILED ' + ', '.join(bad)}; "
              f"training smoke run: {'ok' if smoke.get('pass') else 'FAILED'}")
    if missed:
        print("targets missed: " + "; ".join(missed))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": name, "torch": torch.version.__version__, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
