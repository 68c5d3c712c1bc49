#!/usr/bin/env python3
"""Generate the scikit-learn reference values for cellino-eval's metrics.

Versions used for the committed fixture (also recorded inside it):
    python 3.11.7, numpy==2.4.6, scikit-learn==1.9.1 (scipy==1.17.1)

How to run (from the repository root):

    pip install scikit-learn==1.9.1 numpy==2.4.6
    python xtask/py/make_metric_fixtures.py

It (re)writes one file, `crates/cellino-eval/tests/fixtures/metrics.json`, read by
`crates/cellino-eval/tests/sklearn_parity.rs`.  The output is deterministic (fixed
seed); two runs give byte-identical files.

Inputs are written with few decimals (scores rounded to 1-4 decimals, logits to 3),
so every number parses to the same f64 in Rust and Python, and rounding makes tied
scores common.

Semantics (what the Rust side must reproduce):

* multi-class: `accuracy_score`; `confusion_matrix(labels=range(C))` (rows = true);
  per-class precision/recall/F1 from `precision_recall_fscore_support(labels=range(C),
  average=None, zero_division=0)`; macro precision/recall/F1 with sklearn's default
  `labels` (sorted union of the classes in y_true and y_pred); macro-F1 on a given
  label list, `f1_score(average="macro", labels=[...], zero_division=0)`.
  When scores are given, y_pred = argmax (first maximum on ties, as numpy and torch).
* multi-label: predictions follow torchmetrics 0.10 `MultilabelF1Score`: if any score
  of the whole (N, K) matrix lies outside [0, 1], sigmoid (float64) is applied to all
  scores; then a score is positive iff it is strictly greater than 0.5.  F1 via
  `f1_score(..., zero_division=0)` with average=None / "macro" / "micro".
  Average precision via `average_precision_score` on the raw scores (average=None and
  "macro"); a label without positive targets gets AP 0 (sklearn warns, sets recall to 1,
  and the step integral is then 0), and counts in the macro mean.
"""

import argparse
import json
import platform
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)

SEED = 20240507
OUT = Path("crates/cellino-eval/tests/fixtures/metrics.json")

warnings.filterwarnings("ignore")  # zero-division / no-positive warnings are expected


def fl(xs):
    return [float(x) for x in np.asarray(xs, dtype=np.float64).ravel()]


def ints(xs):
    return [int(x) for x in np.asarray(xs).ravel()]


# --------------------------------------------------------------------------- multi-class


def multiclass_case(name, n_classes, y_true, y_pred=None, scores=None, subsets=()):
    y_true = np.asarray(y_true, dtype=np.int64)
    case = {"name": name, "n_classes": n_classes, "y_true": ints(y_true)}
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        assert scores.shape == (len(y_true), n_classes)
        y_pred = np.argmax(scores, axis=1)  # first maximum on ties
        case["scores"] = [fl(row) for row in scores]
    else:
        case["y_pred"] = ints(y_pred)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    all_labels = list(range(n_classes))
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=all_labels, average=None, zero_division=0
    )
    expected = {
        "y_pred": ints(y_pred),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "confusion_matrix": ints(confusion_matrix(y_true, y_pred, labels=all_labels)),
        "precision": fl(p),
        "recall": fl(r),
        "f1": fl(f),
        "support": ints(s),
        "macro_precision": float(precision_score(y_true, y_pred, average="macro", zero_division=0)),
        "macro_recall": float(recall_score(y_true, y_pred, average="macro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "subsets": [
            {
                "labels": list(map(int, labels)),
                "macro_f1": float(
                    f1_score(y_true, y_pred, average="macro", labels=list(labels), zero_division=0)
                ),
            }
            for labels in subsets
        ],
    }
    case["expected"] = expected
    return case


def noisy_predictions(rng, y_true, n_classes, p_correct):
    wrong = rng.integers(0, n_classes, size=len(y_true))
    keep = rng.random(len(y_true)) < p_correct
    return np.where(keep, y_true, wrong)


def multiclass_cases(rng):
    cases = []
    # random, several sizes
    for n, c, p in [(20, 3, 0.5), (100, 5, 0.7), (250, 10, 0.4), (500, 30, 0.6), (60, 30, 0.3), (300, 7, 0.8)]:
        y_true = rng.integers(0, c, size=n)
        y_pred = noisy_predictions(rng, y_true, c, p)
        subsets = [rng.choice(c, size=min(c, 3), replace=False)]
        if c >= 7:
            subsets.append([4, 5, 6])
        cases.append(multiclass_case(f"random_n{n}_c{c}", c, y_true, y_pred, subsets=subsets))
    # skewed class frequencies: several classes never predicted / never true
    y_true = rng.choice(12, size=200, p=np.r_[np.full(4, 0.2), np.full(8, 0.025)])
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 6, size=200))
    cases.append(multiclass_case("skewed_c12", 12, y_true, y_pred, subsets=[[4, 5, 6], [0, 11]]))
    # from scores (argmax), with and without ties
    for n, c, decimals in [(50, 4, 3), (120, 10, 2), (40, 6, 0)]:
        y_true = rng.integers(0, c, size=n)
        scores = np.round(rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y_true], decimals)
        cases.append(
            multiclass_case(f"scores_n{n}_c{c}_d{decimals}", c, y_true, scores=scores, subsets=[[0, c - 1]])
        )
    # all-equal scores rows: argmax must pick the first column
    scores = np.array([[0.25, 0.25, 0.25], [0.1, 0.7, 0.7], [0.9, 0.0, 0.9], [0.0, 0.0, 0.5]])
    cases.append(multiclass_case("scores_ties_first_max", 3, [1, 2, 0, 2], scores=scores))

    # edge cases
    cases.append(
        multiclass_case("absent_from_predictions", 4, [0, 1, 2, 2, 3, 3], [0, 1, 1, 3, 3, 0], subsets=[[2], [1, 2]])
    )
    cases.append(
        multiclass_case("absent_from_targets", 4, [0, 0, 1, 1, 2], [0, 3, 1, 3, 2], subsets=[[3], [0, 3]])
    )
    cases.append(
        multiclass_case(
            "absent_from_both_in_subset",
            7,
            [0, 1, 2, 3, 4, 4, 1],
            [0, 1, 3, 3, 4, 0, 1],
            subsets=[[4, 5, 6], [5, 6], [5]],
        )
    )
    # CHAMMI leave-one-out: novel classes 4,5,6 are only in y_true; predictions mostly train classes
    y_true = rng.integers(4, 7, size=90)
    y_pred = np.where(rng.random(90) < 0.4, y_true, rng.integers(0, 7, size=90))
    cases.append(multiclass_case("chammi_loo_novel", 7, y_true, y_pred, subsets=[[4, 5, 6]]))
    y_true = rng.integers(4, 7, size=30)
    y_pred = rng.integers(0, 4, size=30)  # no novel class ever predicted
    cases.append(multiclass_case("chammi_loo_none_predicted", 7, y_true, y_pred, subsets=[[4, 5, 6]]))
    cases.append(multiclass_case("single_class_c1", 1, [0, 0, 0], [0, 0, 0], subsets=[[0]]))
    cases.append(multiclass_case("single_class_present_c5", 5, [3, 3, 3, 3], [3, 3, 3, 3], subsets=[[3], [0, 3]]))
    cases.append(multiclass_case("single_sample", 3, [2], [1], subsets=[[1], [2], [0]]))
    y = rng.integers(0, 8, size=64)
    cases.append(multiclass_case("all_correct", 8, y, y, subsets=[[4, 5, 6]]))
    cases.append(multiclass_case("all_wrong", 8, y, (y + 1 + rng.integers(0, 7, size=64)) % 8, subsets=[[4, 5, 6]]))
    cases.append(multiclass_case("all_wrong_two_classes", 2, [0, 1, 0, 1], [1, 0, 1, 0], subsets=[[0], [1]]))
    cases.append(multiclass_case("binary_like", 2, [0, 1, 1, 0, 1], [0, 1, 0, 0, 1], subsets=[[1]]))
    # duplicated labels in the subset are kept by sklearn (each occurrence counts)
    cases.append(
        multiclass_case("subset_with_duplicates", 4, [0, 1, 2, 2, 3], [0, 2, 2, 2, 1], subsets=[[2, 2, 0], [3, 3]])
    )
    return cases


# --------------------------------------------------------------------------- multi-label


def torchmetrics_binarize(scores):
    """torchmetrics 0.10 `_multilabel_stat_scores_format` in float64."""
    scores = np.asarray(scores, dtype=np.float64)
    sigmoid = not bool(np.all((scores >= 0) & (scores <= 1)))
    probs = 1.0 / (1.0 + np.exp(-scores)) if sigmoid else scores
    return (probs > 0.5).astype(np.int64), sigmoid


def multilabel_case(name, targets, scores):
    targets = np.asarray(targets, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    assert targets.shape == scores.shape and targets.ndim == 2 and targets.shape[1] >= 2
    preds, sigmoid = torchmetrics_binarize(scores)
    p, r, f, s = precision_recall_fscore_support(targets, preds, average=None, zero_division=0)
    return {
        "name": name,
        "n_labels": int(targets.shape[1]),
        "targets": [ints(row) for row in targets],
        "scores": [fl(row) for row in scores],
        "expected": {
            "sigmoid_applied": sigmoid,
            "predictions": [ints(row) for row in preds],
            "precision": fl(p),
            "recall": fl(r),
            "f1": fl(f),
            "support": ints(s),
            "macro_f1": float(f1_score(targets, preds, average="macro", zero_division=0)),
            "micro_f1": float(f1_score(targets, preds, average="micro", zero_division=0)),
            "average_precision": fl(average_precision_score(targets, scores, average=None)),
            "mean_average_precision": float(average_precision_score(targets, scores, average="macro")),
        },
    }


def correlated_scores(rng, targets, strength):
    return strength * targets + rng.normal(scale=1.0, size=targets.shape)


def multilabel_cases(rng):
    cases = []
    # probabilities in [0, 1]
    for n, k, density, decimals in [(30, 5, 0.3, 4), (200, 19, 0.15, 4), (100, 28, 0.1, 3), (64, 3, 0.5, 2)]:
        t = (rng.random((n, k)) < density).astype(np.int64)
        s = np.round(1.0 / (1.0 + np.exp(-correlated_scores(rng, t, 1.5) + 1.0)), decimals)
        cases.append(multilabel_case(f"probs_n{n}_k{k}", t, s))
    # logits (sigmoid path); AP on the raw logits
    for n, k, density in [(40, 6, 0.3), (150, 19, 0.2), (80, 28, 0.1)]:
        t = (rng.random((n, k)) < density).astype(np.int64)
        s = np.round(2.0 * correlated_scores(rng, t, 1.2) - 1.0, 3)
        cases.append(multilabel_case(f"logits_n{n}_k{k}", t, s))
    # threshold boundary: exactly 0.5 is negative (strict >), exactly 0 and 1 are in range
    t = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]])
    s = np.array([[0.5, 0.5, 0.5000001], [0.0, 1.0, 0.4999], [1.0, 0.5, 0.0], [0.7, 0.3, 0.5]])
    cases.append(multilabel_case("threshold_exactly_half", t, s))
    # logits exactly 0 -> sigmoid 0.5 -> negative
    t = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1]])
    s = np.array([[0.0, -0.0, 2.0], [-3.0, 0.0, 0.001], [0.0, 5.0, -0.001]])
    cases.append(multilabel_case("logits_exactly_zero", t, s))
    # one score outside [0, 1] switches the whole matrix to the sigmoid path
    t = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    s = np.array([[0.9, 0.1, 0.0], [0.2, 0.6, 0.3], [0.0, 0.4, 1.5], [0.55, 0.45, 0.0]])
    cases.append(multilabel_case("one_score_above_one", t, s))
    s2 = s.copy()
    s2[2, 2] = -0.01
    cases.append(multilabel_case("one_score_below_zero", t, s2))
    # labels without positives / without predictions / without either / all positive
    t = (rng.random((50, 8)) < 0.3).astype(np.int64)
    t[:, 1] = 0  # no positives, but predicted
    t[:, 5] = 0  # no positives, never predicted -> F1 0 in macro, AP 0
    t[:, 7] = 1  # every sample positive
    s = np.round(rng.random((50, 8)) * 0.6 + 0.4 * t, 3)
    s[:, 5] = np.round(rng.random(50) * 0.5, 3)  # <= 0.5 everywhere
    s[:, 3] = np.round(rng.random(50) * 0.5, 3)  # label 3 has positives but no prediction
    cases.append(multilabel_case("labels_without_positives", t, s))
    # no positive anywhere
    cases.append(multilabel_case("all_targets_negative", np.zeros((10, 4)), np.round(rng.random((10, 4)), 2)))
    # heavy ties: scores on a coarse grid
    for n, k, decimals in [(60, 5, 1), (120, 10, 1)]:
        t = (rng.random((n, k)) < 0.35).astype(np.int64)
        s = np.round(np.clip(0.25 * t + rng.random((n, k)) * 0.75, 0, 1), decimals)
        cases.append(multilabel_case(f"tied_scores_n{n}_k{k}", t, s))
    tl = (rng.random((60, 5)) < 0.4).astype(np.int64)
    cases.append(multilabel_case("tied_logits", tl, np.round(rng.normal(size=(60, 5)) + tl, 0)))
    # all scores identical in a column
    t = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]])
    s = np.array([[0.3, 0.9], [0.3, 0.9], [0.3, 0.9], [0.3, 0.9], [0.3, 0.9]])
    cases.append(multilabel_case("constant_scores", t, s))
    # single sample
    cases.append(multilabel_case("single_sample", [[1, 0, 1, 0]], [[0.8, 0.9, 0.2, 0.1]]))
    # perfect and inverted rankings
    t = (rng.random((40, 4)) < 0.5).astype(np.int64)
    t[0] = 1
    t[1] = 0
    cases.append(multilabel_case("perfect", t, np.where(t == 1, 0.9, 0.1)))
    cases.append(multilabel_case("inverted", t, np.where(t == 1, 0.1, 0.9)))
    return cases


# --------------------------------------------------------------------------- binary AP


def binary_ap_cases(rng):
    cases = []

    def add(name, y, s):
        y = np.asarray(y, dtype=np.int64)
        s = np.asarray(s, dtype=np.float64)
        cases.append(
            {
                "name": name,
                "targets": ints(y),
                "scores": fl(s),
                "average_precision": float(average_precision_score(y, s)),
            }
        )

    add("sklearn_doc_example", [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    add("all_negative", [0, 0, 0], [0.1, 0.5, 0.9])
    add("all_positive", [1, 1, 1], [0.1, 0.5, 0.9])
    add("single_positive_sample", [1], [0.3])
    add("single_negative_sample", [0], [0.3])
    add("all_tied", [1, 0, 1, 0, 0], [0.5, 0.5, 0.5, 0.5, 0.5])
    add("negative_scores_and_zero", [1, 0, 1, 0], [-2.0, -0.0, 0.0, -1.5])
    y = (rng.random(300) < 0.2).astype(np.int64)
    add("random_n300", y, np.round(rng.normal(size=300) + y, 3))
    y = (rng.random(200) < 0.5).astype(np.int64)
    add("random_ties_n200", y, np.round(rng.random(200) + 0.3 * y, 1))
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    doc = {
        "generator": "xtask/py/make_metric_fixtures.py",
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "seed": SEED,
        "multiclass": multiclass_cases(rng),
        "multilabel": multilabel_cases(rng),
        "binary_average_precision": binary_ap_cases(rng),
    }
    # one case per line: small diffs, still a single JSON document
    lines = ["{"]
    head = [k for k in doc if not isinstance(doc[k], list)]
    for k in head:
        lines.append(f"{json.dumps(k)}: {json.dumps(doc[k], separators=(',', ':'))},")
    lists = [k for k in doc if isinstance(doc[k], list)]
    for i, k in enumerate(lists):
        lines.append(f"{json.dumps(k)}: [")
        items = [json.dumps(c, separators=(",", ":")) for c in doc[k]]
        lines.append(",\n".join(items))
        lines.append("]" + ("," if i + 1 < len(lists) else ""))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # sanity
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    n = sum(len(doc[k]) for k in lists)
    print(f"wrote {args.out} ({len(text) / 1024:.1f} KiB, {n} cases)")


if __name__ == "__main__":
    main()
