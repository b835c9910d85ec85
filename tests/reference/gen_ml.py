"""Reference vectors for constml's classic-ML family (k-means, SGD, least squares).

Run from the repository root:  python3 tests/reference/gen_ml.py
Writes tests/reference/ml.bin (CMLREF01, see refvec.py).

Everything here comes from scikit-learn run in float64 on its bundled data sets,
so, unlike the PyTorch files, the data and every output are stored as f64 only
(no /f32 twin). Labels and counts are i64 (scikit-learn returns int32 labels;
they are widened). Nothing here is random except the k-means++ seeding of
kmeans/iris_best, which uses random_state=0.

Data
  iris/x               f64 (150, 4), load_iris().data.
  iris/y               i64 (150), classes 0, 1, 2.
  diabetes/x           f64 (442, 10), load_diabetes() with its default scaled=True:
                       each raw column is centred, divided by its standard deviation
                       and then by sqrt(442), so every column has unit sum of squares.
                       (The scaling is computed at load time from the bundled raw
                       file, not stored by scikit-learn.)
  diabetes/y           f64 (442), the disease-progression target.

k-means: sklearn.cluster.KMeans(n_clusters=K, init=..., n_init=1, algorithm="lloyd")
on iris/x. Per case: init (K, 4), centers (K, 4), labels i64 (150), inertia (1),
n_iter i64 (1), params f64 [K, max_iter, tol as given to KMeans].
  kmeans/given_a           init = x[[0, 50, 100]], max_iter 300, tol 1e-4.
  kmeans/given_b           init = x[[0, 1, 2]] (three setosa points: a poor start),
                           max_iter 300, tol 1e-4.
  kmeans/given_tol0        init = x[[0, 1, 2]], max_iter 300, tol 0.
  kmeans/given_empty       init = x[0], x[50] and the far point [100, 100, 100, 100];
                           no sample is nearest to the far centre, so after the first
                           assignment cluster 2 is empty and scikit-learn relocates it
                           (see below); max_iter 300, tol 1e-4.
  kmeans/given_k5_maxiter2 K = 5, init = x[[0, 30, 60, 90, 120]], max_iter 2, tol 1e-4.
  kmeans/tiny_donor   x = [[0], [1], [50]], init [[0.5], [1000], [95]]: a relocation that
                      empties its donor cluster; step_centers after one
                      lloyd_iter_chunked_dense call, and the full fit (centers, labels,
                      inertia, n_iter).
  kmeans/iris_best         KMeans(3, init="k-means++", n_init=10, random_state=0):
                           inertia, centers, labels, and note (text): its inertia to
                           four decimals (the crate's documented figure is 78.8514).
  kmeans/tol_scale         f64 (1) = mean over features of var(x[:, j]) (population
                           variance). KMeans does not compare against tol itself: it
                           compares against tol * tol_scale (sklearn.cluster._kmeans.
                           _tolerance; tol 0 stays 0).
What the installed _kmeans_single_lloyd does, which an implementation has to copy
to reproduce n_iter and the final labels:
  * Before anything, KMeans subtracts the column means of X from X and from the
    given init, runs Lloyd on the centred data and adds the means back to the
    centres at the end (for accuracy; it changes rounding, not results).
  * Iteration i (counted from 1): assign every point to its nearest centre (ties
    go to the lower index), then recompute each centre as the mean of its points.
    If a cluster received no point, it is relocated before averaging: the points
    farthest from their assigned old centre (squared distance) are taken, one per
    empty cluster, largest distance first; each such point is removed from its own
    cluster's sum and becomes the sole member of the empty one.
  * Stop test after iteration i: if the labels equal those of iteration i - 1
    ("strict convergence"; impossible at i = 1), stop. Otherwise, if the sum over
    clusters of the squared centre shift (old centre to new centre) is
    <= tol * tol_scale, stop. Otherwise continue, up to max_iter iterations.
  * Unless the stop was strict, one more assignment step is run with the final
    centres (no centre update), so the returned labels are always the nearest
    centres of the returned centres. n_iter is the number of full iterations run.
  * inertia = sum of squared distances of the points to their assigned centre.

SGD: sklearn.linear_model.SGDRegressor(loss="squared_error", shuffle=False,
tol=None, fit_intercept=True, average=False, random_state=0, max_iter=E) fitted
once on all of diabetes (float64), for E = 1 and E = 5 epochs (two separate fits,
each from zero weights).
  sgd/{case}/epochs{E}/coef       f64 (10)
  sgd/{case}/epochs{E}/intercept  f64 (1)
  sgd/{case}/epochs{E}/t          f64 (1), the fitted t_ = 1 + E * 442
  sgd/{case}/params               f64 [eta0, power_t, alpha, learning_rate
                                  (0 constant, 1 invscaling), penalty (0 none, 1 l2)]
  cases: const_none (constant, eta0 0.01, penalty None), inv_none (invscaling,
  eta0 0.01, power_t 0.25, penalty None), const_l2 (constant, eta0 0.01, l2,
  alpha 0.001), inv_l2 (invscaling, eta0 0.05, power_t 0.25, l2, alpha 1e-4).
  (alpha and power_t are passed for every case and are simply unused where the
  penalty or the schedule ignores them.)
The update rule, read from _plain_sgd in sklearn/linear_model/_sgd_fast.pyx.tp of
the installed version (summarised here, dense input, no averaging, no shuffling,
sample and class weights all 1). State: weight vector w stored as w = wscale * v
(v an array, wscale a scalar starting at 1), intercept b, and a counter t that
starts at 1.0 for a fresh fit (SGDRegressor passes its t_, reset to 1.0 by fit).
For every sample (x, y), in data order, in every epoch:
  1. p = (v . x) * wscale + b, with the weights as they are before this sample.
  2. eta = eta0 for "constant"; eta = eta0 / pow(t, power_t) for "invscaling",
     using the current t (so the first sample of a fit uses eta0 exactly).
  3. dloss = p - y. The loss is scikit-learn's half squared error 0.5 (p - y)^2,
     so there is no factor 2. dloss is clipped to [-1e12, 1e12].
  4. update = -eta * dloss.
  5. L2 only: weight decay, w <- w * max(0, 1 - eta * alpha), applied as
     wscale *= that factor (if wscale falls below 1e-9, v is multiplied by wscale
     and wscale reset to 1). It comes after p was computed but BEFORE the gradient
     step, so the gradient step is added to the decayed weights.
  6. Gradient step: w <- w + update * x, applied as v += x * (update / wscale).
  7. Intercept: b <- b + update * intercept_decay. intercept_decay is 1.0 for dense
     input (0.01 only for sparse input). The intercept is never weight-decayed.
  8. t <- t + 1, after the sample has been fully processed.
After the last epoch w = wscale * v is materialised; SGDRegressor then sets
t_ = t_initial + epochs * n_samples. With tol=None there is no stopping test, so
exactly max_iter epochs run. The script replays this rule in plain Python and
asserts that it reproduces scikit-learn's coef and intercept.
  linreg/coef (10), linreg/intercept (1), linreg/train_mse (1):
                       LinearRegression() on all of diabetes; train_mse is the mean of
                       the squared training residuals.
"""
import math
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refvec  # noqa: E402

import sklearn  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LinearRegression, SGDRegressor  # noqa: E402

OUT = {}
REPORT = []


def put(name, a):
    assert name not in OUT, name
    OUT[name] = np.array(a, copy=True, order="C")


def f64(*values):
    return np.array(values, dtype=np.float64)


def i64(*values):
    return np.array(values, dtype=np.int64)


# ---------------------------------------------------------------- data
iris = load_iris()
IX = np.ascontiguousarray(iris.data, dtype=np.float64)
put("iris/x", IX)
put("iris/y", iris.target.astype(np.int64))
diabetes = load_diabetes()
DX = np.ascontiguousarray(diabetes.data, dtype=np.float64)
DY = np.ascontiguousarray(diabetes.target, dtype=np.float64)
assert DX.shape == (442, 10) and IX.shape == (150, 4)
assert np.allclose((DX ** 2).sum(axis=0), 1.0)
put("diabetes/x", DX)
put("diabetes/y", DY)


# ---------------------------------------------------------------- k-means
def check_kmeans(km):
    """The returned labels are the nearest returned centres; inertia matches."""
    d2 = ((IX[:, None, :] - km.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
    assert np.array_equal(d2.argmin(axis=1), km.labels_), "labels are not the nearest centres"
    inertia = d2[np.arange(len(IX)), km.labels_].sum()
    assert math.isclose(inertia, km.inertia_, rel_tol=1e-12), (inertia, km.inertia_)


def kmeans_case(name, init, max_iter=300, tol=1e-4):
    init = np.asarray(init, dtype=np.float64)
    km = KMeans(n_clusters=len(init), init=init, n_init=1, max_iter=max_iter, tol=tol,
                algorithm="lloyd").fit(IX)
    check_kmeans(km)
    p = f"kmeans/{name}"
    put(f"{p}/init", init)
    put(f"{p}/centers", km.cluster_centers_)
    put(f"{p}/labels", km.labels_.astype(np.int64))
    put(f"{p}/inertia", f64(km.inertia_))
    put(f"{p}/n_iter", i64(km.n_iter_))
    put(f"{p}/params", f64(len(init), max_iter, tol))
    REPORT.append(f"kmeans/{name}: n_iter {km.n_iter_}, inertia {km.inertia_!r}")
    return km


tol_scale = float(np.mean(np.var(IX, axis=0)))
put("kmeans/tol_scale", f64(tol_scale))
kmeans_case("given_a", IX[[0, 50, 100]])
kmeans_case("given_b", IX[[0, 1, 2]])
kmeans_case("given_tol0", IX[[0, 1, 2]], tol=0.0)
FAR = [100.0, 100.0, 100.0, 100.0]
km_empty = kmeans_case("given_empty", np.vstack([IX[[0, 50]], [FAR]]))
# Relocation really happened: no centre is left anywhere near the far point.
assert np.all(np.abs(km_empty.cluster_centers_) < 10.0)
assert len(set(km_empty.labels_.tolist())) == 3
REPORT.append("kmeans/given_empty: final centres " + np.array2string(km_empty.cluster_centers_, precision=4)
              .replace("\n", ""))
kmeans_case("given_k5_maxiter2", IX[[0, 30, 60, 90, 120]], max_iter=2)

best = KMeans(n_clusters=3, init="k-means++", n_init=10, random_state=0, algorithm="lloyd").fit(IX)
check_kmeans(best)
put("kmeans/iris_best/inertia", f64(best.inertia_))
put("kmeans/iris_best/centers", best.cluster_centers_)
put("kmeans/iris_best/labels", best.labels_.astype(np.int64))
put("kmeans/iris_best/note", refvec.text(
    f"KMeans(3, init=k-means++, n_init=10, random_state=0, algorithm=lloyd) on iris: "
    f"inertia {best.inertia_:.4f} (full value {best.inertia_!r}); constml's documented figure is 78.8514"))
REPORT.append(f"kmeans/iris_best: inertia {best.inertia_!r} ({best.inertia_:.4f}), n_iter {best.n_iter_}")
REPORT.append(f"kmeans/tol_scale {tol_scale!r}; tol 1e-4 -> threshold {1e-4 * tol_scale!r}")


# ---------------------------------------------------------------- SGD
SGD_CASES = [
    # name, learning_rate, eta0, power_t, penalty, alpha
    ("const_none", "constant", 0.01, 0.25, None, 0.0001),
    ("inv_none", "invscaling", 0.01, 0.25, None, 0.0001),
    ("const_l2", "constant", 0.01, 0.25, "l2", 0.001),
    ("inv_l2", "invscaling", 0.05, 0.25, "l2", 0.0001),
]


def sgd_replay(epochs, schedule, eta0, power_t, penalty, alpha):
    """The per-sample rule of _plain_sgd (see the module docstring), in plain Python."""
    v = [0.0] * DX.shape[1]
    wscale, b, t = 1.0, 0.0, 1.0
    rows, ys = DX.tolist(), DY.tolist()
    for _ in range(epochs):
        for x, y in zip(rows, ys):
            acc = 0.0
            for vj, xj in zip(v, x):
                acc += vj * xj
            p = acc * wscale + b
            eta = eta0 if schedule == "constant" else eta0 / math.pow(t, power_t)
            dloss = min(max(p - y, -1e12), 1e12)
            update = -eta * dloss
            if penalty == "l2":
                wscale *= max(0.0, 1.0 - eta * alpha)
                if wscale < 1e-9:
                    v = [vj * wscale for vj in v]
                    wscale = 1.0
            if update != 0.0:
                step = update / wscale
                v = [vj + xj * step for vj, xj in zip(v, x)]
            b += update * 1.0
            t += 1.0
    return np.array(v) * wscale, b, t


for name, schedule, eta0, power_t, penalty, alpha in SGD_CASES:
    put(f"sgd/{name}/params", f64(eta0, power_t, alpha, 0 if schedule == "constant" else 1,
                                  0 if penalty is None else 1))
    for epochs in (1, 5):
        reg = SGDRegressor(loss="squared_error", penalty=penalty, alpha=alpha, learning_rate=schedule,
                           eta0=eta0, power_t=power_t, max_iter=epochs, shuffle=False, tol=None,
                           fit_intercept=True, average=False, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.fit(DX, DY)
        assert reg.n_iter_ == epochs
        p = f"sgd/{name}/epochs{epochs}"
        put(f"{p}/coef", reg.coef_)
        put(f"{p}/intercept", np.asarray(reg.intercept_, dtype=np.float64).reshape(1))
        put(f"{p}/t", f64(reg.t_))
        coef, b, t = sgd_replay(epochs, schedule, eta0, power_t, penalty, alpha)
        err = max(np.abs(coef - reg.coef_).max(), abs(b - reg.intercept_[0]))
        scale = max(np.abs(reg.coef_).max(), abs(reg.intercept_[0]))
        assert err <= 1e-12 * scale and t == reg.t_, (p, err, t, reg.t_)
        REPORT.append(f"{p}: intercept {reg.intercept_[0]:.6f}, |coef|max {np.abs(reg.coef_).max():.4f}, "
                      f"t_ {reg.t_:g}; replay max diff {err:.3g}")

# ---------------------------------------------------------------- least squares
lin = LinearRegression().fit(DX, DY)
mse = float(np.mean((lin.predict(DX) - DY) ** 2))
put("linreg/coef", lin.coef_)
put("linreg/intercept", f64(lin.intercept_))
put("linreg/train_mse", f64(mse))
REPORT.append(f"linreg: intercept {lin.intercept_!r}, train_mse {mse!r}")

# ---------------------------------------------------------------- k-means, relocation corner
# Three points on a line, x = 0, 1, 50, from centres 0.5, 1000, 95: the middle
# centre is empty after the first assignment and takes x = 50, which empties
# the third cluster in turn; scikit-learn then places that one at the centre
# of the most populous cluster. One iteration through the library's own
# lloyd_iter_chunked_dense, and the whole fit.
from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense  # noqa: E402

TX = np.array([[0.0], [1.0], [50.0]])
TINIT = np.array([[0.5], [1000.0], [95.0]])
cnew = np.zeros_like(TINIT)
wic = np.zeros(3)
tlabels = np.full(3, -1, dtype=np.int32)
shift = np.zeros(3)
lloyd_iter_chunked_dense(TX, np.ones(3), TINIT.copy(), cnew, wic, tlabels, shift, 1, True)
put("kmeans/tiny_donor/x", TX)
put("kmeans/tiny_donor/init", TINIT)
put("kmeans/tiny_donor/step_centers", cnew.copy())
tkm = KMeans(n_clusters=3, init=TINIT, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(TX)
put("kmeans/tiny_donor/centers", tkm.cluster_centers_)
put("kmeans/tiny_donor/labels", tkm.labels_.astype(np.int64))
put("kmeans/tiny_donor/inertia", f64(tkm.inertia_))
put("kmeans/tiny_donor/n_iter", i64(tkm.n_iter_))
REPORT.append(f"kmeans/tiny_donor: one step {cnew.ravel().tolist()}, fit {tkm.cluster_centers_.ravel().tolist()} "
              f"in {tkm.n_iter_} iterations")

# ---------------------------------------------------------------- write
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "ml.bin")
assert sklearn.__version__ in refvec.versions()
refvec.write(path, OUT, meta=f"tests/reference/gen_ml.py; {refvec.versions()}")
print(f"wrote {path}: {len(OUT) + 1} entries, {os.path.getsize(path)} bytes")
for line in REPORT:
    print(line)
