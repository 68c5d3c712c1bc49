#!/usr/bin/env python3
"""An independent scikit-learn implementation of the CHAMMI tasks, and the fixture it writes.

Versions used for the committed fixture (also recorded inside it):
    numpy==2.4.6, scikit-learn==1.9.1

How to run (from the repository root):

    pip install scikit-learn==1.9.1 numpy==2.4.6
    python xtask/py/chammi_reference.py

It (re)writes `crates/cellino-eval/tests/data/chammi/`:

* `<Allen|HPA|CP>/enriched_meta.csv`: `ID, file_path, train_test_split, label` plus the
  leave-one-out group column (`cell_type` for HPA, `Plate` for CP), rows shuffled so that
  the splits interleave;
* `<Allen|HPA|CP>/embeddings.npy`: float32 (N, dim), row i = CSV row i;
* `expected.json`: the feature layout and, per subset, task and classifier, macro F1 and
  accuracy.

`crates/cellino-eval/tests/chammi_reference.rs` runs the Rust evaluator on these files
and compares.  The output is deterministic (fixed seed).

The protocol (spec DINOV2_CELL.md §6.3-6.5, §7.3), written here without reference to
the Rust code:

* tasks per subset: WTC (`Allen`) TASK_ONE-TWO, HPA TASK_ONE-THREE, CP TASK_ONE-FOUR;
  the classifier is fitted on the TRAIN rows and predicts the task rows;
* classifiers: the MorphEm exact 1-NN, `KNeighborsClassifier(n_neighbors=1)` with the L2
  or the cosine metric (brute force); and the dinov2 weighted kNN (L2-normalised rows,
  top-max(k) cosine neighbours, weights softmax(sim / 0.07) over those, class votes =
  sum of the first k weights, arg-max with the lower class on ties), k = 1 and 5;
* leave-one-group-out (HPA TASK_THREE by `cell_type`, CP TASK_FOUR by `Plate`): only
  the last block's columns (CLS + patch average) are used; for every group, the
  classifier is fitted on TRAIN plus the task rows of the other groups and predicts the
  group; the concatenated predictions are scored with
  `f1_score(average="macro", labels=[4, 5, 6])` and `accuracy_score`;
* other tasks: `f1_score(average="macro")` (the classes present in truth or prediction)
  and `accuracy_score`.

The linear classifier of the Rust evaluator is the dinov2 AdamW probe grid, which has no
scikit-learn counterpart (MorphEm's `SGDClassifier` is a different classifier); it is
checked against PyTorch by `make_probe_fixtures.py` instead.

Features are continuous (Gaussian class centres, a per-group shift, Gaussian noise), so
distance ties do not occur; the script checks that every nearest neighbour and every
kNN vote wins by a clear margin, so float32 vs float64 arithmetic cannot flip a
prediction.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score, f1_score
from sklearn.neighbors import KNeighborsClassifier

NOVEL = [4, 5, 6]
TEMPERATURE = 0.07
KS = [1, 5]
# Feature layout: Bag of Channels, the CLS of the last 2 of 4 blocks + the patch average,
# 4 columns per (block, channel) segment: [cls b2 c0..C-1 | cls b3 c0..C-1 | avg b3 c0..C-1].
EMBED_DIM = 4
N_LAST_BLOCKS = 2
DEPTH = 4
# Within-class spread: large enough that no task is solved perfectly.
NOISE = 2.2
# A prediction must not hinge on a similarity or vote difference below this (float32 on the Rust side).
MARGIN = 1e-5

SUBSETS = {
    "Allen": {
        "channels": 3,
        "classes": ["M0", "M1M2", "M3", "M4M5", "M6M7_complete", "M6M7_single"],
        "ext": "ome.tiff",
        # (split, rows, classes drawn from, shift)
        "splits": [("Train", 150, range(6), 0.0), ("Task_one", 60, range(6), 0.0), ("Task_two", 60, range(6), 0.8)],
        "loo": None,
    },
    "HPA": {
        "channels": 4,
        "classes": [
            "golgi apparatus",
            "microtubules",
            "mitochondria",
            "nuclear speckles",
            "cytosol",
            "endoplasmic reticulum",
            "nucleoplasm",
        ],
        "ext": "png",
        "splits": [("Train", 140, range(4), 0.0), ("Task_one", 50, range(4), 0.0), ("Task_two", 50, range(4), 0.8)],
        "loo": ("Task_three", "cell_type", ["U-2 OS", "HeLa", "A549", "MCF7"], 96),
    },
    "CP": {
        "channels": 5,
        "classes": [
            "BRD-A29260609",
            "BRD-K04185004",
            "BRD-K21680192",
            "DMSO",
            "BRD-K11129031",
            "BRD-K62310379",
            "BRD-K77947974",
        ],
        "ext": "png",
        "splits": [
            ("Train", 140, range(4), 0.0),
            ("Task_one", 50, range(4), 0.0),
            ("Task_two", 50, range(4), 0.6),
            ("Task_three", 50, range(4), 1.0),
        ],
        "loo": ("Task_four", "Plate", ["BR00116991", "BR00116993", "BR00117000"], 105),
    },
}


def task_name(split):
    return split.upper()


def dims(channels):
    return (N_LAST_BLOCKS + 1) * channels * EMBED_DIM


def last_block_columns(channels):
    # The older block's CLS comes first; the rest (last CLS + patch averages) is one run.
    start = (N_LAST_BLOCKS - 1) * channels * EMBED_DIM
    return np.arange(start, dims(channels))


def generate(rng, spec):
    """Rows (split, class, group) and float32 features with class and domain structure."""
    c = len(spec["classes"])
    dim = dims(spec["channels"])
    centres = rng.normal(0.0, 1.0, size=(c, dim))
    rows = []
    for split, n, classes, shift in spec["splits"]:
        direction = rng.normal(0.0, 1.0, size=dim)
        for _ in range(n):
            # Every row has a group value, as in the real files; only the task's rows are grouped.
            g = str(rng.choice(spec["loo"][2])) if spec["loo"] else ""
            rows.append((split, int(rng.choice(list(classes))), g, shift * direction))
    if spec["loo"] is not None:
        split, _, groups, n = spec["loo"]
        offsets = {g: rng.normal(0.0, 0.6, size=dim) for g in groups}
        for i in range(n):
            g = groups[i % len(groups)]
            # Mostly novel classes, some known ones (so labels=[4, 5, 6] matters).
            cls = int(rng.choice(NOVEL)) if rng.random() < 0.8 else int(rng.integers(0, 4))
            rows.append((split, cls, g, offsets[g]))
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    x = np.stack([centres[cls] + off + rng.normal(0.0, NOISE, size=dim) for _, cls, _, off in rows])
    return [(s, cls, g) for s, cls, g, _ in rows], x.astype(np.float32)


def nn_margin(fit_x, query_x, metric):
    """Smallest gap between the nearest and the second nearest train row over the queries."""
    if metric == "cosine":
        a = fit_x / np.linalg.norm(fit_x, axis=1, keepdims=True)
        b = query_x / np.linalg.norm(query_x, axis=1, keepdims=True)
        d = 1.0 - b @ a.T
    else:
        d = np.sqrt(((query_x[:, None, :] - fit_x[None, :, :]) ** 2).sum(-1))
    d.sort(axis=1)
    return float((d[:, 1] - d[:, 0]).min())


def one_nn(fit_x, fit_y, query_x, metric):
    clf = KNeighborsClassifier(n_neighbors=1, metric=metric, algorithm="brute")
    clf.fit(fit_x, fit_y)
    return clf.predict(query_x)


def weighted_knn(fit_x, fit_y, query_x, n_classes):
    """dinov2 kNN votes for every k in KS; returns {k: predictions} and the smallest vote margin."""
    a = fit_x / np.linalg.norm(fit_x, axis=1, keepdims=True)
    b = query_x / np.linalg.norm(query_x, axis=1, keepdims=True)
    sim = b @ a.T
    kmax = max(KS)
    order = np.argsort(-sim, axis=1, kind="stable")
    top = order[:, :kmax]
    s = np.take_along_axis(sim, top, axis=1)
    # Which rows are the first k must not depend on the last bits of the similarities.
    srt = np.take_along_axis(sim, order[:, : kmax + 1], axis=1)
    margin = min(float((srt[:, k - 1] - srt[:, k]).min()) for k in KS)
    w = np.exp(s / TEMPERATURE)
    w /= w.sum(axis=1, keepdims=True)
    out = {}
    for k in KS:
        votes = np.zeros((len(query_x), n_classes))
        for j in range(k):
            votes[np.arange(len(query_x)), fit_y[top[:, j]]] += w[:, j]
        out[k] = votes.argmax(axis=1)
        srt = np.sort(votes, axis=1)
        if k > 1:
            margin = min(margin, float((srt[:, -1] - srt[:, -2]).min()))
    return out, margin


def classify(fit_x, fit_y, query_x, n_classes, checks):
    """Predictions of every classifier: {name: predictions}."""
    preds = {}
    for metric in ("l2", "cosine"):
        # sklearn's "l2" is the Euclidean distance.
        preds[f"1nn_{metric}"] = one_nn(fit_x, fit_y, query_x, metric)
        checks.append(nn_margin(fit_x, query_x, metric))
    knn, margin = weighted_knn(fit_x, fit_y, query_x, n_classes)
    checks.append(margin)
    for k, p in knn.items():
        preds[f"knn_k{k}"] = p
    return preds


def scores(y, pred, labels=None):
    f1 = f1_score(y, pred, average="macro", labels=labels, zero_division=0)
    return {"macro_f1": float(f1), "accuracy": float(accuracy_score(y, pred))}


def evaluate(spec, rows, x):
    n_classes = len(spec["classes"])
    split = np.array([s for s, _, _ in rows])
    y = np.array([c for _, c, _ in rows])
    groups = np.array([g for _, _, g in rows])
    x = x.astype(np.float64)
    train = split == "Train"
    tasks, checks = {}, []
    for name, *_ in spec["splits"][1:]:
        test = split == name
        preds = classify(x[train], y[train], x[test], n_classes, checks)
        tasks[task_name(name)] = {c: scores(y[test], p) for c, p in preds.items()}
    if spec["loo"] is not None:
        name, _, _, _ = spec["loo"]
        cols = last_block_columns(spec["channels"])
        xl = x[:, cols]
        task_rows = np.flatnonzero(split == name)
        pred = {}
        for g in dict.fromkeys(groups[task_rows]):  # first-seen order
            held = task_rows[groups[task_rows] == g]
            others = task_rows[groups[task_rows] != g]
            fit = np.concatenate([np.flatnonzero(train), others])
            p = classify(xl[fit], y[fit], xl[held], n_classes, checks)
            for c, v in p.items():
                pred.setdefault(c, np.zeros(len(x), dtype=int))[held] = v
        tasks[task_name(name)] = {c: scores(y[task_rows], p[task_rows], labels=NOVEL) for c, p in pred.items()}
    return tasks, min(checks)


def write_csv(path, spec, rows, ids):
    group_col = spec["loo"][1] if spec["loo"] else None
    header = ["ID", "file_path", "train_test_split", "label"] + ([group_col] if group_col else [])
    lines = [",".join(header)]
    for i, (split, cls, g) in zip(ids, rows):
        label = spec["classes"][cls]
        cells = [i, f"{path.parent.name}/{i}.{spec['ext']}", split, label] + ([g] if group_col else [])
        lines.append(",".join(f'"{c}"' if ("," in c or " " in c) else c for c in cells))
    path.write_text("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/cellino-eval/tests/data/chammi")
    ap.add_argument("--seed", type=int, default=20260526)
    args = ap.parse_args()
    out = Path(args.out)
    expected = {
        "generator": "xtask/py/chammi_reference.py",
        "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__},
        "seed": args.seed,
        "layout": {"embed_dim": EMBED_DIM, "n_last_blocks": N_LAST_BLOCKS, "depth": DEPTH, "avgpool": True},
        "knn": {"ks": KS, "temperature": TEMPERATURE},
        "novel_labels": NOVEL,
        "subsets": {},
    }
    for folder, spec in SUBSETS.items():
        # Draw again (next attempt) while some prediction hinges on a near tie.
        for attempt in range(1000):
            rng = np.random.default_rng([args.seed, len(folder), attempt])
            rows, x = generate(rng, spec)
            tasks, margin = evaluate(spec, rows, x)
            if margin > MARGIN:
                break
        else:
            raise SystemExit(f"{folder}: no draw without near ties")
        d = out / folder
        d.mkdir(parents=True, exist_ok=True)
        ids = [f"{folder.lower()}_{i:04d}" for i in range(len(rows))]
        write_csv(d / "enriched_meta.csv", spec, rows, ids)
        np.save(d / "embeddings.npy", x)
        expected["subsets"][folder] = {
            "channels": spec["channels"],
            "dim": dims(spec["channels"]),
            "n_rows": len(rows),
            "attempt": attempt,
            "min_margin": margin,
            "tasks": tasks,
        }
        for t, r in tasks.items():
            print(folder, t, {c: round(s["macro_f1"], 4) for c, s in r.items()})
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
