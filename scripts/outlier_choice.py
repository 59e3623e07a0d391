#!/usr/bin/env python3
"""The measurement behind ADR 016 (which per-row outlier score): HBOS (PyOD), Mahalanobis
distance on the PCA space kept for multivariate drift (65 % of variance, as ADR 010 fits it),
and scikit-learn's IsolationForest, on a planted-outlier set, and the time each takes to fit on
the reference and to score 1M rows (one thread; the machine's load is printed beside it).

Planted outliers (1 % of 20,000 test rows each kind, against a 10,000-row reference of 10
features, three latent factors plus noise, one skewed and one on a large scale):
- `one_feature`: one feature moved 4-8 standard deviations (the feature is recorded);
- `joint`: every feature within its range, the factor structure broken (each feature drawn
  from its own marginal, independently);
- `unseen`: the scale feature (a price) at 10-30x its usual value;
- `gap`: a two-mode feature (modes at -3 and 3) at a value between them (-0.5 to 0.5).
Reported: ROC AUC of each score per kind, and for HBOS and Mahalanobis the share of
`one_feature` rows whose top feature is the moved one (IsolationForest names none).

Usage: ~/.cache/venv-outliers/bin/python scripts/outlier_choice.py
"""

import os
import time

import numpy as np
from pyod.models.hbos import HBOS
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

rng = np.random.default_rng(14)
K = 10


def draw(n):
    f = rng.normal(0, 1, (n, 3))
    w = np.eye(3)[np.arange(K) % 3].T * np.linspace(0.3, 0.9, K)[None, :]
    x = f @ w + 0.5 * rng.normal(0, 1, (n, K))
    x[:, 7] = np.exp(x[:, 7])
    # Two modes (a feature of two populations): the gap between them is empty.
    x[:, 5] = np.where(rng.random(n) < 0.5, -3, 3) + 0.5 * rng.normal(0, 1, n)
    x[:, 9] = 50_000 + 8_000 * x[:, 9]
    return x


ref = draw(10_000)
n_test = 20_000
mu, sd = ref.mean(0), ref.std(0)
test = draw(n_test)
kinds = {}
idx = rng.permutation(n_test)
one, joint, unseen, gap = idx[:200], idx[200:400], idx[400:600], idx[600:800]
moved = rng.integers(0, K, 200)
for r, j in zip(one, moved):
    test[r, j] = mu[j] + rng.choice([-1, 1]) * rng.uniform(4, 8) * sd[j]
for r in joint:
    test[r] = [ref[rng.integers(0, len(ref)), j] for j in range(K)]
for r in unseen:
    test[r, 9] = mu[9] * rng.uniform(10, 30)
for r in gap:
    test[r, 5] = rng.uniform(-0.5, 0.5)
labels = {k: np.zeros(n_test, bool) for k in ("one_feature", "joint", "unseen", "gap")}
labels["one_feature"][one] = True
labels["joint"][joint] = True
labels["unseen"][unseen] = True
labels["gap"][gap] = True
clean = np.ones(n_test, bool)
clean[idx[:800]] = False

lo, hi = ref.min(0), ref.max(0)
scale = lambda x: (x - lo) / (hi - lo)  # noqa: E731


def hbos():
    m = HBOS(n_bins=10, alpha=0.1, tol=0.5).fit(scale(ref))
    return m, lambda x: m.decision_function(scale(x))


def hbos_top(m, x):
    # Per-feature terms as modelwatch reads them: -log2(density + alpha), 0 far out.
    xs = scale(x)
    terms = np.zeros_like(xs)
    for j in range(K):
        e = m.bin_edges_[:, j]
        b = np.clip(np.digitize(xs[:, j], e, right=True) - 1, 0, 9)
        t = -np.log2(m.hist_[b, j] + 0.1)
        w = e[1] - e[0]
        far = (xs[:, j] < e[0] - 0.5 * w) | (xs[:, j] > e[-1] + 0.5 * w)
        t[far] = -np.log2(0.1)
        terms[:, j] = t
    best = -np.log2(m.hist_.max(0) + 0.1)
    return terms.sum(1), (terms - best).argmax(1)


def mahalanobis():
    pca = PCA(0.65).fit((ref - mu) / sd)
    lam = pca.explained_variance_
    return pca, lambda x: (((pca.transform((x - mu) / sd)) ** 2) / lam).sum(1)


def iforest():
    m = IsolationForest(n_estimators=100, random_state=0, n_jobs=1).fit(ref)
    return m, lambda x: -m.score_samples(x)


big = draw(1_000_000)
print(f"load average {os.getloadavg()}, {os.cpu_count()} cpus")
print("method        fit s   score 1M s (cpu s)  " + "  ".join(f"AUC {k:11s}" for k in labels))
for name, make in [("hbos", hbos), ("mahalanobis", mahalanobis), ("iforest", iforest)]:
    t0 = time.perf_counter()
    model, score = make()
    fit_s = time.perf_counter() - t0
    s = score(test)
    c0, t0 = time.process_time(), time.perf_counter()
    score(big)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    aucs = []
    for k, lab in labels.items():
        mask = lab | clean
        aucs.append(roc_auc_score(lab[mask], s[mask]))
    print(f"{name:12s} {fit_s:6.2f}   {wall:8.2f} ({cpu:6.2f})     " + "  ".join(f"{a:15.3f}" for a in aucs))
    if name == "hbos":
        ours, top = hbos_top(model, test)
        aucs = [roc_auc_score(lab[lab | clean], ours[lab | clean]) for lab in labels.values()]
        print("  hbos, modelwatch's rule (density 0 far outside the range):   " + "  ".join(f"{a:15.3f}" for a in aucs))
        print(f"  hbos names the moved feature first in {np.mean(top[one] == moved):.1%} of one_feature rows")
    if name == "mahalanobis":
        # Contribution of each standardised feature to the distance through the components.
        z = (test[one] - mu) / sd
        p = model.transform(z)
        contrib = np.abs((p / model.explained_variance_) @ model.components_ * z)
        print(f"  mahalanobis names the moved feature first in {np.mean(contrib.argmax(1) == moved):.1%} of one_feature rows")
