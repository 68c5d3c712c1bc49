#!/usr/bin/env python3
"""Reference values for cellino-ssl's losses, centering, Sinkhorn-Knopp, head, AdamW, clipping,
schedules and parameter groups, written from DINOV2_CELL.md §5 (not copied from dinov2).

    python3 xtask/py/make_ssl_fixtures.py  # writes crates/cellino-ssl/tests/fixtures/ssl_fixtures.json

Inputs are float32 (as the Rust side uses), references are computed in float64.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "cellino-ssl", "tests", "fixtures",
                   "ssl_fixtures.json")
g = torch.Generator().manual_seed(1234)


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=g) * scale).float()


def lst(t):
    return t.detach().double().reshape(-1).tolist()


def ce(student, teacher_p, t_s=0.1):
    """-mean_b sum_k p log_softmax(s / T_s)"""
    return -(teacher_p * F.log_softmax(student / t_s, dim=-1)).sum(-1).mean()


fx = {}

# ---- DINO loss with EMA centering (one step, nonzero center) ----
B, K, NL = 3, 16, 4
s_glob = randn(2 * B, K, scale=2.0)
s_loc = randn(NL * B, K, scale=2.0)
t_glob = randn(2 * B, K, scale=2.0)  # teacher head logits, crop-major, NOT swapped
center = randn(1, K, scale=0.5)
tt = 0.05
t_sw = torch.cat([t_glob[B:], t_glob[:B]]).double()
p_sw = F.softmax((t_sw - center.double()) / tt, dim=-1)
n_terms = NL * 2 + 2
local = sum(ce(s_loc[l * B:(l + 1) * B].double(), p_sw[gi * B:(gi + 1) * B]) for l in range(NL) for gi in range(2))
local = local / n_terms
glob = 2 * ce(s_glob.double(), p_sw) / n_terms
new_center = 0.9 * center.double() + 0.1 * t_sw.sum(0, keepdim=True) / (2 * B)
fx["dino"] = dict(B=B, K=K, n_local=NL, teacher_temp=tt, student_global=lst(s_glob), student_local=lst(s_loc),
                  teacher_logits=lst(t_glob), center=lst(center), teacher_probs_swapped=lst(p_sw),
                  local=float(local), global_=float(glob), center_after=lst(new_center))

# ---- Sinkhorn-Knopp, 3 iterations, single device ----
Bs, Ks = 5, 12
# Head logits are cosines (L2-normalised features × weight-normalised prototypes, g = 1), so |t| <= ~1;
# like upstream there is no max-subtraction, and f32 exp(t / 0.05) would overflow for |t| > ~4.4.
t = randn(Bs, Ks, scale=0.5)
Q = torch.exp(t.double() / tt).t()
Q /= Q.sum()
for _ in range(3):
    Q /= Q.sum(dim=1, keepdim=True)
    Q /= Ks
    Q /= Q.sum(dim=0, keepdim=True)
    Q /= Bs
Q *= Bs
fx["sinkhorn"] = dict(B=Bs, K=Ks, temperature=tt, logits=lst(t), targets=lst(Q.t()))

# ---- iBOT masked-patch loss with EMA centering ----
n_img, n_tok = 4, 6
masks = torch.zeros(n_img, n_tok, dtype=torch.bool)
masks[0, [0, 2, 3]] = True
masks[2, [1]] = True
masks[3, [0, 1, 2, 3, 4]] = True  # image 1 unmasked
M = int(masks.sum())
s_m = randn(M, K, scale=2.0)
t_m = randn(M, K, scale=2.0)
c_i = randn(1, K, scale=0.5)
p_m = F.softmax((t_m.double() - c_i.double()) / tt, dim=-1)
w = (1.0 / masks.sum(-1).clamp(min=1).double()).unsqueeze(-1).expand_as(masks)[masks]
per = (p_m * F.log_softmax(s_m.double() / 0.1, dim=-1)).sum(-1)
ibot = -(per * w).sum() / n_img
c_i_after = 0.9 * c_i.double() + 0.1 * t_m.double().mean(0, keepdim=True)
fx["ibot"] = dict(n_images=n_img, n_tokens=n_tok, K=K, teacher_temp=tt, masks=[int(v) for v in masks.reshape(-1)],
                  student=lst(s_m), teacher_logits=lst(t_m), center=lst(c_i), loss=float(ibot),
                  center_after=lst(c_i_after), weights=lst(w))

# ---- KoLeo ----
Bk, Dk = 6, 5
x = randn(Bk, Dk)
xd = x.double()
xn = xd / xd.norm(dim=-1, keepdim=True).clamp(min=1e-8)
dots = xn @ xn.t()
dots.fill_diagonal_(-math.inf)
nn_idx = dots.argmax(dim=1)
dist = (xn - xn[nn_idx] + 1e-8).norm(dim=-1)
koleo = -torch.log(dist + 1e-8).mean()
fx["koleo"] = dict(B=Bk, D=Dk, x=lst(x), loss=float(koleo))

# ---- DINO head forward (3 layers, bottleneck, L2, weight-normalised prototypes) ----
Din, Hh, Bn, Kh, Nh = 6, 10, 4, 7, 3
ws = dict(w0=randn(Hh, Din, scale=0.3), b0=randn(Hh, scale=0.1), w2=randn(Hh, Hh, scale=0.3),
          b2=randn(Hh, scale=0.1), w4=randn(Bn, Hh, scale=0.3), b4=randn(Bn, scale=0.1),
          g=(randn(Kh, 1, scale=0.2) + 1.0), v=randn(Kh, Bn, scale=0.5))
xh = randn(Nh, Din)
d = {k: v.double() for k, v in ws.items()}
h = F.gelu(xh.double() @ d["w0"].t() + d["b0"])
h = F.gelu(h @ d["w2"].t() + d["b2"])
h = h @ d["w4"].t() + d["b4"]
h = h / h.norm(dim=-1, keepdim=True).clamp(min=1e-12)
W = d["g"] * d["v"] / d["v"].norm(dim=1, keepdim=True)
out = h @ W.t()
fx["head"] = dict(in_dim=Din, hidden=Hh, bottleneck=Bn, K=Kh, N=Nh, x=lst(xh), out=lst(out),
                  **{k: lst(v) for k, v in ws.items()})

# ---- AdamW (torch.optim.AdamW), 4 steps with changing lr / wd, one frozen (lr 0) step ----
p0 = randn(3, 4)
grads = [randn(3, 4) for _ in range(4)]
lrs = [1e-2, 5e-3, 0.0, 2e-2]
wds = [0.04, 0.1, 0.2, 0.0]
p = torch.nn.Parameter(p0.double().clone())
opt = torch.optim.AdamW([p], lr=lrs[0], betas=(0.9, 0.999), eps=1e-8, weight_decay=wds[0])
for gr, lr, wd in zip(grads, lrs, wds):
    for grp in opt.param_groups:
        grp["lr"] = lr
        grp["weight_decay"] = wd
    p.grad = gr.double().clone()
    opt.step()
st = opt.state[p]
fx["adamw"] = dict(shape=[3, 4], p0=lst(p0), grads=[lst(x) for x in grads], lrs=lrs, wds=wds, p=lst(p),
                   exp_avg=lst(st["exp_avg"]), exp_avg_sq=lst(st["exp_avg_sq"]))

# ---- clip_grad_norm_ ----
ga, gb = randn(3, 2, scale=2.0), randn(5, scale=2.0)
pa, pb = torch.nn.Parameter(torch.zeros(3, 2, dtype=torch.float64)), torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
pa.grad, pb.grad = ga.double().clone(), gb.double().clone()
norm = torch.nn.utils.clip_grad_norm_([pa, pb], 3.0)
fx["clip"] = dict(a=lst(ga), b=lst(gb), max_norm=3.0, norm=float(norm), a_clipped=lst(pa.grad), b_clipped=lst(pb.grad))


# ---- CosineScheduler (§5.5) ----
def cosine(base, final, total, warmup=0, start=0.0, freeze=0):
    sched = [0.0] * freeze + list(np.linspace(start, base, warmup))
    L = total - warmup - freeze
    sched += [final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / L)) for i in range(L)]
    return [float(v) for v in sched]


el, epochs, warm, freeze_ep, bs = 5, 6, 2, 1, 48
lr = 5e-4 * math.sqrt(bs / 1024)
lr_s = cosine(lr, 1e-6, epochs * el, warm * el)
last = list(lr_s)
last[:freeze_ep * el] = [0.0] * (freeze_ep * el)
fx["schedules"] = dict(
    el=el, epochs=epochs, warmup_epochs=warm, freeze_last_layer_epochs=freeze_ep, batch=bs, base_lr=5e-4, lr=lr,
    lr_schedule=lr_s, last_layer_lr=last, wd=cosine(0.04, 0.2, epochs * el), momentum=cosine(0.996, 1.0, epochs * el),
    teacher_temp=cosine(0.07, 0.07, 4 * el, 4 * el, 0.04), freeze_example=cosine(1.0, 0.5, 10, 3, 0.2, 2))


# ---- parameter-group multipliers (§5.4) for a depth-3 backbone and the head ----
def layer_id(name, depth):
    if name.split(".")[0] in ("pos_embed", "patch_embed", "mask_token", "cls_token", "register_tokens"):
        return 0
    if name.startswith("blocks."):
        parts = name.split(".")
        return int(parts[2]) + 1 if parts[2].isdigit() else int(parts[1]) + 1
    return depth + 1


names = ["cls_token", "pos_embed", "mask_token", "patch_embed.proj.weight", "patch_embed.proj.bias",
         "blocks.0.norm1.weight", "blocks.0.attn.qkv.weight", "blocks.1.ls1.gamma", "blocks.2.mlp.fc2.bias",
         "blocks.0.2.attn.proj.weight", "norm.weight", "norm.bias"]
groups = []
for n in names:
    lm = 0.9 ** (3 + 1 - layer_id(n, 3))
    if "patch_embed" in n:
        lm *= 0.2
    wm = 0.0 if (n.endswith(".bias") or "norm" in n or "gamma" in n) else 1.0
    groups.append(dict(name=n, lr_mult=lm, wd_mult=wm, last=False))
for n in ["mlp.0.weight", "mlp.0.bias", "last_layer.weight_g", "last_layer.weight_v"]:
    groups.append(dict(name="head:" + n, lr_mult=1.0, wd_mult=0.0 if n.endswith(".bias") else 1.0,
                       last="last_layer" in n))
fx["param_groups"] = dict(depth=3, groups=groups)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump(fx, f)
print("wrote", os.path.normpath(OUT))
