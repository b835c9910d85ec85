"""Times one Lloyd iteration of scikit-learn's k-means, for comparison with constml.

Run from the repository root:  python3 benches/sklearn_lloyd.py

What it measures: scikit-learn's own compiled kernel for a single Lloyd step,
sklearn.cluster._k_means_lloyd.lloyd_iter_chunked_dense, called the way
KMeans(algorithm="lloyd") calls it from _kmeans_single_lloyd: assign each of the
n = 10 000 float32 points (16 features, seeded standard normal) to the nearest of
K = 8 centres (the first 8 points), then accumulate the new centres, relocate
empty clusters, average and compute the centre shift (update_centers=True). One
OpenMP thread (n_threads=1) and one BLAS thread (threadpoolctl, as KMeans limits
BLAS while it runs). Python-level overhead of the call is included; it is a few
microseconds at most.

The old centres are not replaced between calls, so every call repeats exactly
the same iteration. Calls are grouped into batches; the figure printed is the
median over batches of the mean time per call within a batch, in microseconds.

The Rust bench benches/norm_ml.rs (written separately) has the matching case:
one Lloyd iteration on 10 000 x 16 f32 points with K = 8, single-threaded.
"""
import platform
import statistics
import time

import numpy as np
import sklearn
from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
from threadpoolctl import threadpool_info, threadpool_limits

N, D, K = 10_000, 16, 8
CALLS_PER_BATCH = 200
BATCHES = 15
WARMUP_CALLS = 50


def main():
    rng = np.random.default_rng(20240601)
    x = np.ascontiguousarray(rng.standard_normal((N, D)), dtype=np.float32)
    sample_weight = np.ones(N, dtype=np.float32)
    centers_old = np.ascontiguousarray(x[:K].copy())
    centers_new = np.zeros_like(centers_old)
    weight_in_clusters = np.zeros(K, dtype=np.float32)
    labels = np.full(N, -1, dtype=np.int32)
    center_shift = np.zeros(K, dtype=np.float32)

    def one():
        lloyd_iter_chunked_dense(x, sample_weight, centers_old, centers_new, weight_in_clusters,
                                 labels, center_shift, 1, update_centers=True)

    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(WARMUP_CALLS):
            one()
        # Sanity: the kernel did a real Lloyd step (labels are the nearest old centres,
        # the new centres are the means of their clusters).
        d2 = ((x[:, None, :].astype(np.float64) - centers_old[None].astype(np.float64)) ** 2).sum(axis=2)
        assert np.array_equal(d2.argmin(axis=1), labels)
        counts = np.bincount(labels, minlength=K)
        assert counts.min() > 0 and np.array_equal(weight_in_clusters, counts.astype(np.float32))
        means = np.stack([x[labels == k].astype(np.float64).mean(axis=0) for k in range(K)])
        assert np.allclose(centers_new, means, atol=1e-5)

        per_call = []
        for _ in range(BATCHES):
            t0 = time.perf_counter_ns()
            for _ in range(CALLS_PER_BATCH):
                one()
            t1 = time.perf_counter_ns()
            per_call.append((t1 - t0) / CALLS_PER_BATCH / 1000.0)

    med = statistics.median(per_call)
    blas = ", ".join(sorted(f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()
                            if i.get("user_api") == "blas"))
    print(f"sklearn lloyd_iter_chunked_dense, n={N} d={D} k={K} f32, n_threads=1: "
          f"median {med:.1f} us per iteration "
          f"(min {min(per_call):.1f}, max {max(per_call):.1f} over {BATCHES} batches of {CALLS_PER_BATCH})")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}"
          + (f", BLAS {blas}" if blas else ""))
    print(f"cluster sizes: {np.bincount(labels, minlength=K).tolist()}")


if __name__ == "__main__":
    main()
