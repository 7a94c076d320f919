"""How long the 2-D map takes at scale, and how well it keeps clusters apart.

Prints wall-clock and CPU seconds (CPU time is the fairer figure on a shared machine).
Makes N synthetic unit vectors in 384 dimensions drawn around 40 random cluster centres
(spreads differ, like topics of different breadth), projects them with every method of
paperfeed.recommend.projection, and prints the seconds and a quality figure: the share of
each point's 10 nearest neighbours on the 2-D map that come from its own cluster (on a
sample of 5,000 points; 1.0 is perfect, 1/40 is chance).

    OMP_NUM_THREADS=2 python benchmarks/map_projection.py --n 100000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def synthetic(
    n: int, dim: int = 384, clusters: int = 40, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, n)
    spread = rng.uniform(0.04, 0.09, clusters).astype(np.float32)
    x = centres[labels] + rng.standard_normal((n, dim)).astype(np.float32) * spread[labels, None]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def neighbour_agreement(xy: np.ndarray, labels: np.ndarray, sample: int = 5000) -> float:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(1)
    pick = rng.choice(len(xy), min(sample, len(xy)), replace=False)
    nn = NearestNeighbors(n_neighbors=11).fit(xy)
    _, idx = nn.kneighbors(xy[pick])
    return float((labels[idx[:, 1:]] == labels[pick, None]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--methods", default="pca,umap,tsne,sklearn-tsne")
    args = parser.parse_args()
    from paperfeed.recommend.projection import PCA_DIMS, pca, project

    x, labels = synthetic(args.n)
    print(
        f"{args.n} vectors, 384-d, 40 clusters, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    for method in args.methods.split(","):
        started = time.perf_counter()
        cpu = time.process_time()
        if method == "sklearn-tsne":
            from sklearn.manifold import TSNE

            xy = TSNE(n_components=2, metric="cosine", random_state=0, init="pca").fit_transform(
                pca(x, PCA_DIMS)
            )
        else:
            xy = project(x, method)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        agreement = neighbour_agreement(xy, labels)
        print(
            f"{method:13s} {seconds:7.1f} s wall {cpu:7.1f} s CPU  10-NN agreement {agreement:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
