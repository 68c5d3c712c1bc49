#!/usr/bin/env python3
"""Generate the PyTorch / NumPy reference data for cellino-eval's linear probe and kNN.

Versions used for the committed fixtures (also recorded inside them):
    python 3.11.7, torch==2.15.0 (CPU, 1 thread), numpy==2.4.6, scikit-learn==1.9.1

How to run (from the repository root):

    pip install torch==2.15.0 numpy==2.4.6 scikit-learn==1.9.1
    python xtask/py/make_probe_fixtures.py

It (re)writes two files read by `crates/cellino-eval/tests/probe_parity.rs`:

* `crates/cellino-eval/tests/fixtures/linear_probe.json`: the Cell-DINO linear-probe
  training loop (`dinov2/eval/cell_dino/linear.py`) run for a few dozen iterations on
  random features: one `nn.Linear(dim, K)` per (lr, wd) pair, weight `normal_(0, 0.01)`,
  bias 0, AdamW param groups `{"lr": lr * batch / 256, "weight_decay": wd}` built with
  `torch.optim.AdamW(groups, weight_decay=0)`, `CosineAnnealingLR(T_max=iterations,
  eta_min=0)` stepped per iteration, summed loss over the classifiers (`CrossEntropyLoss`
  or `BCEWithLogitsLoss`). Batches come from an infinite shuffled stream (one
  `torch.randperm` per pass, generator seeded with 0, batches may straddle passes), as
  upstream's `InfiniteSampler`. The fixture stores the features, targets, initial
  weights, the batch order, per-iteration losses and learning rates, and the final
  weights and biases. The Rust test replays the same initial weights and batch order.
  It also stores upstream-format classifier names and scikit-learn subset accuracies.
* `crates/cellino-eval/tests/fixtures/knn.json`: DINOv2 `KnnModule.forward` on one rank
  (L2-normalised features, `torch.mm`, `topk(max_k, largest=True, sorted=True)`,
  `softmax(sims / T)`, one-hot (or multi-hot) votes summed over the first k), plus exact
  1-NN (L2 and cosine, float64, `argmin`) from scikit-learn's pairwise distances. Queries
  with a near-tie (gap <= 1e-5 between consecutive similarities among the top max_k + 1)
  are left out, since `torch.topk` leaves the order of ties unspecified.

The output is deterministic (fixed seeds, 1 CPU thread): two runs give byte-identical
files. All inputs are float32 values written as the shortest decimal of their float64
value, so they parse back to the same float32 in Rust.
"""

import json
import math
import platform
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.metrics import accuracy_score
from sklearn.metrics.pairwise import cosine_distances, euclidean_distances
from torch import nn
from torch.nn.functional import normalize, one_hot, softmax

OUT_DIR = Path("crates/cellino-eval/tests/fixtures")
SEED = 20250117

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def f32_list(t):
    return [float(x) for x in np.asarray(t, dtype=np.float32).ravel()]


def f64_list(t):
    return [float(x) for x in np.asarray(t, dtype=np.float64).ravel()]


def int_list(t):
    return [int(x) for x in np.asarray(t).ravel()]


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


# --------------------------------------------------------------------------- linear probe


def classifier_name(n_blocks, avgpool, lr, wd):
    """Upstream `setup_linear_classifiers` naming (lr is the scaled learning rate)."""
    return f"classifier_{n_blocks}_blocks_avgpool_{avgpool}_lr_{lr:.5f}_wd_{wd:.2E}".replace(".", "_")


def scale_lr(lr, batch_size):
    return lr * (batch_size * 1) / 256.0  # upstream scale_lr, world size 1


def infinite_batches(n, batch_size, iterations, seed=0):
    """Upstream-style infinite shuffled sampler: a randperm per pass, chunked in batches."""
    generator = torch.Generator().manual_seed(seed)
    stream = []
    while len(stream) < batch_size * iterations:
        stream.extend(torch.randperm(n, generator=generator).tolist())
    return [stream[i * batch_size : (i + 1) * batch_size] for i in range(iterations)]


def probe_case(name, task, n, dim, k, batch_size, iterations, lrs, wds, rng):
    # Features with some class structure so that the classifiers actually learn.
    if task == "multiclass":
        labels = rng.integers(0, k, size=n)
        centers = rng.normal(size=(k, dim))
        x = centers[labels] + rng.normal(size=(n, dim))
        targets = torch.from_numpy(labels.astype(np.int64))
    else:
        multi_hot = (rng.random((n, k)) < 0.35).astype(np.int64)
        mixing = rng.normal(size=(k, dim))
        x = multi_hot @ mixing + rng.normal(size=(n, dim))
        targets = torch.from_numpy(multi_hot).float()
    features = torch.from_numpy(x.astype(np.float32))

    torch.manual_seed(SEED)
    classifiers, groups, specs = [], [], []
    for lr in lrs:  # learning rate outer, weight decay inner (upstream order)
        for wd in wds:
            linear = nn.Linear(dim, k)
            linear.weight.data.normal_(mean=0.0, std=0.01)
            linear.bias.data.zero_()
            scaled = scale_lr(lr, batch_size)
            classifiers.append(linear)
            groups.append({"params": linear.parameters(), "lr": scaled, "weight_decay": wd})
            specs.append({"learning_rate": lr, "scaled_learning_rate": scaled, "weight_decay": wd})
    initial = [(f32_list(c.weight.data), f32_list(c.bias.data)) for c in classifiers]

    optimizer = torch.optim.AdamW(groups, weight_decay=0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations, eta_min=0)
    criterion = nn.CrossEntropyLoss() if task == "multiclass" else nn.BCEWithLogitsLoss()
    batches = infinite_batches(n, batch_size, iterations)

    losses, lrs_per_step = [], []
    for batch in batches:
        idx = torch.tensor(batch)
        data, labels = features[idx], targets[idx]
        outputs = [c(data) for c in classifiers]
        per = [criterion(o, labels) for o in outputs]
        loss = sum(per)
        lrs_per_step.append([g["lr"] for g in optimizer.param_groups])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append([float(p.item()) for p in per])

    with torch.no_grad():
        final_scores = [f32_list(c(features)) for c in classifiers]
    return {
        "name": name,
        "task": task,
        "n": n,
        "dim": dim,
        "n_outputs": k,
        "batch_size": batch_size,
        "iterations": iterations,
        "features": f32_list(features),
        "targets": int_list(targets),
        "specs": specs,
        "initial_weights": [w for w, _ in initial],
        "initial_biases": [b for _, b in initial],
        "batches": batches,
        "losses": losses,
        "learning_rates": lrs_per_step,
        "final_weights": [f32_list(c.weight.data) for c in classifiers],
        "final_biases": [f32_list(c.bias.data) for c in classifiers],
        "final_scores": final_scores,
    }


def name_cases():
    lrs = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1, 2e-1, 5e-1, 1.0]
    wds = [0.0, 0.0001, 1.0e-05, 0.05, 3e-7]
    cases = []
    for n_blocks, avgpool, batch in [(4, False, 64), (1, True, 128), (4, True, 32), (1, False, 48)]:
        for lr in lrs:
            for wd in wds:
                cases.append(
                    {
                        "n_last_blocks": n_blocks,
                        "avgpool": avgpool,
                        "batch_size": batch,
                        "learning_rate": lr,
                        "weight_decay": wd,
                        "scaled_learning_rate": scale_lr(lr, batch),
                        "name": classifier_name(n_blocks, avgpool, scale_lr(lr, batch), wd),
                    }
                )
    return cases


def subset_accuracy_cases(rng):
    cases = []
    for n, k in [(12, 3), (40, 5), (7, 1)]:
        y_true = (rng.random((n, k)) < 0.4).astype(np.int64)
        y_pred = y_true.copy()
        flip = rng.random((n, k)) < 0.15
        y_pred[flip] = 1 - y_pred[flip]
        scores = np.where(y_pred == 1, 0.75, 0.25)  # in [0, 1]: no sigmoid, > 0.5 rule
        cases.append(
            {
                "n_labels": k,
                "targets": int_list(y_true),
                "scores": f64_list(scores),
                "accuracy": float(accuracy_score(y_true, y_pred)),
            }
        )
    return cases


def make_linear_probe():
    rng = np.random.default_rng(SEED)
    cases = [
        probe_case("multiclass_ce", "multiclass", 96, 16, 5, 16, 40, [0.01, 0.1, 1.0], [0.0, 0.5], rng),
        probe_case("multilabel_bce", "multilabel", 80, 12, 4, 16, 40, [0.01, 0.1, 1.0], [0.0, 0.5], rng),
    ]
    return {
        "versions": versions(),
        "seed": SEED,
        "cases": cases,
        "names": name_cases(),
        "subset_accuracy": subset_accuracy_cases(rng),
    }


# --------------------------------------------------------------------------- kNN


def min_gap(sorted_desc, upto):
    """Smallest gap between consecutive ranked values among the first `upto + 1`."""
    head = sorted_desc[:, : upto + 1]
    return float((head[:, :-1] - head[:, 1:]).min())


def knn_case(name, task, n_train, n_test, dim, k, ks, temperature, rng):
    # Three times as many candidate queries as needed; those whose ranked similarities
    # hold a near-tie among the top max_k + 1 are dropped (torch.topk does not define the
    # order of ties), and the first n_test others are kept.
    n_cand = 3 * n_test
    if task == "multiclass":
        train_labels = rng.integers(0, k, size=n_train)
        test_labels = rng.integers(0, k, size=n_cand)
        centers = rng.normal(size=(k, dim)) * 1.5
        train_x = centers[train_labels] + rng.normal(size=(n_train, dim))
        test_x = centers[test_labels] + rng.normal(size=(n_cand, dim))
        train_t = torch.from_numpy(train_labels.astype(np.int64))
    else:
        train_labels = (rng.random((n_train, k)) < 0.35).astype(np.int64)
        test_labels = (rng.random((n_cand, k)) < 0.35).astype(np.int64)
        mixing = rng.normal(size=(k, dim)) * 1.5
        train_x = train_labels @ mixing + rng.normal(size=(n_train, dim))
        test_x = test_labels @ mixing + rng.normal(size=(n_cand, dim))
        train_t = torch.from_numpy(train_labels).float()
    train_f = torch.from_numpy(train_x.astype(np.float32))
    max_k = max(ks)
    train_n = normalize(train_f, dim=1, p=2)

    cand_f = torch.from_numpy(test_x.astype(np.float32))
    cand_sorted = torch.mm(normalize(cand_f, dim=1, p=2), train_n.T).sort(dim=1, descending=True).values
    head = cand_sorted[:, : max_k + 1].double()
    gaps = (head[:, :-1] - head[:, 1:]).min(dim=1).values
    keep = torch.nonzero(gaps > 1e-5).flatten()[:n_test]
    assert len(keep) == n_test, f"{name}: only {len(keep)} queries without near-ties"
    keep_np = keep.numpy()
    test_x, test_labels = test_x[keep_np], test_labels[keep_np]
    test_f = torch.from_numpy(test_x.astype(np.float32))

    # DINOv2 KnnModule on one rank.
    test_n = normalize(test_f, dim=1, p=2)
    similarity = torch.mm(test_n, train_n.T)
    topk_sims, indices = similarity.topk(max_k, largest=True, sorted=True)
    full_sorted = similarity.sort(dim=1, descending=True).values.numpy().astype(np.float64)
    gap = min_gap(full_sorted, max_k)
    assert gap > 1e-5, f"{name}: near-tie in the top-{max_k} similarities ({gap})"
    weights = softmax(topk_sims / temperature, 1)
    if task == "multiclass":
        neighbors = torch.gather(train_t.view(1, -1).expand(n_test, -1), 1, indices)
        votes = one_hot(neighbors, num_classes=k) * weights.view(n_test, -1, 1)
    else:
        votes = train_t[indices] * weights.view(n_test, -1, 1)
    probas = {kk: torch.sum(votes[:, :kk, :], 1) for kk in ks}

    # Exact 1-NN in float64 (scikit-learn distances, first minimum).
    one_nn = {}
    for metric, fn in [("l2", euclidean_distances), ("cosine", cosine_distances)]:
        d = fn(test_x.astype(np.float32).astype(np.float64), train_x.astype(np.float32).astype(np.float64))
        order = np.sort(d, axis=1)
        assert float((order[:, 1] - order[:, 0]).min()) > 1e-9, f"{name}: 1-NN tie ({metric})"
        idx = np.argmin(d, axis=1)
        one_nn[metric] = {"indices": int_list(idx), "distances": f64_list(d[np.arange(n_test), idx])}

    return {
        "name": name,
        "task": task,
        "n_train": n_train,
        "n_test": n_test,
        "dim": dim,
        "n_outputs": k,
        "ks": ks,
        "temperature": temperature,
        "min_similarity_gap": gap,
        "train_features": f32_list(train_f),
        "test_features": f32_list(test_f),
        "train_targets": int_list(train_labels),
        "test_targets": int_list(test_labels),
        "topk_indices": int_list(indices),
        "topk_similarities": f32_list(topk_sims),
        "scores": {str(kk): f32_list(p) for kk, p in probas.items()},
        "one_nn": one_nn,
    }


def make_knn():
    rng = np.random.default_rng(SEED + 1)
    return {
        "versions": versions(),
        "seed": SEED + 1,
        "cases": [
            knn_case("multiclass", "multiclass", 300, 60, 24, 6, [1, 5, 20], 0.07, rng),
            knn_case("multilabel", "multilabel", 250, 40, 20, 4, [1, 3, 10], 0.07, rng),
        ],
    }


def write(name, doc):
    path = OUT_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    path.write_text(text + "\n")
    print(f"wrote {path} ({len(text) / 1024:.0f} KiB)")


def main():
    assert math.isclose(scale_lr(1e-3, 64), 2.5e-4)
    write("linear_probe.json", make_linear_probe())
    write("knn.json", make_knn())


if __name__ == "__main__":
    main()
