//! k-means clustering: Lloyd's algorithm as scikit-learn's `KMeans`
//! (`algorithm="lloyd"`) runs it, k-means++ seeding, restarts, and an online
//! (MacQueen) update for devices that see one sample at a time.
//!
//! # Lloyd ([`kmeans_views_with`], [`KMeans::fit`])
//!
//! Each iteration assigns every point to its nearest centre (squared
//! Euclidean distance, the lowest centre index on ties; computed as
//! `‖c‖² − 2·x·c` with the backend's matrix product over chunks of points,
//! as scikit-learn does), then moves each centre to the mean of its points.
//!
//! * **Empty clusters** are relocated as scikit-learn does: the clusters
//!   empty after an assignment (listed before any moves) take the points
//!   farthest from their (previous) centres, the farthest first (among equal
//!   distances the last point, as NumPy's partition leaves it), each taken
//!   out of its old cluster's sum; nothing moves when every point sits on its
//!   centre; a cluster still empty then takes the mean of the most populous
//!   one. (scikit-learn copies while it averages, so an empty cluster listed
//!   before the most populous one receives that cluster's *unaveraged sum*:
//!   with more clusters than distinct points it returns centres that are no
//!   cluster's mean, labels that are not the nearest centres and an inertia
//!   that is not theirs. constml copies the mean; the fuzz target `kmeans`
//!   checks the labels and inertia of every fit.)
//!   With several empty clusters at once and equal distances, scikit-learn
//!   pairs them with the far points in NumPy's partition order, which can
//!   differ.
//! * **Stopping**: when the labels did not change since the previous
//!   iteration and no cluster was empty (strict convergence; scikit-learn
//!   looks at the labels only, and so can return labels that an empty
//!   cluster's relocation has made stale), or when `Σ‖c_new − c_old‖² ≤ tol ·
//!   mean_j var(X[:, j])` (scikit-learn scales `tol` by the mean feature
//!   variance), or after `max_iter` iterations. Unless strictly converged, a
//!   final assignment makes the labels match the returned centres.
//! * **Result** ([`KMeansFit`]): inertia `Σ‖x − c_label‖²` (computed
//!   directly), iterations run, and the best run's index with `n_init`
//!   restarts (the lowest inertia, the first on ties).
//!
//! # Seeding ([`KMeansInit`])
//!
//! Given centres (one run), or greedy k-means++ (Arthur & Vassilvitskii; the
//! greedy variant scikit-learn uses): the first centre is a uniformly drawn
//! point; each next one is the best, by resulting potential, of `2 + ⌊ln K⌋`
//! candidates drawn with probability proportional to the squared distance to
//! the nearest chosen centre. Draws come from the caller's generator.
//!
//! Tested against scikit-learn on iris: from given centres (including a
//! start that empties a cluster) the centres, labels, inertia and iteration
//! count equal `KMeans`'s; k-means++ with 10 restarts reaches its optimum
//! (inertia 78.8514).
//!
//! ```
//! use constml::ml::{KMeans, KMeansInit, KMeansScratch};
//! use constml::rand_core::SeedableRng;
//! let x = [[0.0f64, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]];
//! let km = KMeans::<f64, 2, 2>::new().n_init(3);
//! let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
//! let (mut centers, mut labels) = ([[0.0; 2]; 2], [0usize; 4]);
//! let mut scratch = KMeansScratch::new();
//! let fit = km.fit(&x, KMeansInit::PlusPlus, &mut rng, &mut centers, &mut labels, &mut scratch)?;
//! assert!((fit.inertia - 0.01).abs() < 1e-12);
//! assert_eq!(labels[0], labels[1]);
//! assert_ne!(labels[0], labels[2]);
//! # Ok::<(), constml::Error>(())
//! ```

use rand_core::Rng;

use crate::backend::{Accumulate, Backend, Simd};
use crate::decode::uniform;
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// Points per chunk of the assignment step's `A·Bᵀ` product.
pub const KMEANS_CHUNK: usize = 256;

/// How the centres start.
#[derive(Clone, Copy, Debug)]
pub enum KMeansInit<'a, T> {
    /// Greedy k-means++ from the caller's generator.
    PlusPlus,
    /// These centres `(K, D)` (a single run whatever `n_init` says, as
    /// scikit-learn does).
    Given(MatRef<'a, T>),
}

/// Settings: `max_iter` (default 300), `tol` (default `1e-4`, scaled by the
/// mean feature variance), `n_init` restarts (default 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KMeansConfig<T> {
    /// Iteration cap (`≥ 1`).
    pub max_iter: usize,
    /// Relative tolerance on the centre shift (finite, `≥ 0`).
    pub tol: T,
    /// Runs with different k-means++ seeds (`≥ 1`).
    pub n_init: usize,
}

impl<T: Real> Default for KMeansConfig<T> {
    fn default() -> Self {
        Self {
            max_iter: 300,
            tol: T::from_f64(1e-4),
            n_init: 1,
        }
    }
}

impl<T: Real> KMeansConfig<T> {
    fn check(&self) -> Result<()> {
        let bad = |what, reason| Err(Error::InvalidParameter { what, reason });
        if self.max_iter == 0 {
            return bad("k-means: max_iter", "must be at least 1");
        }
        if self.n_init == 0 {
            return bad("k-means: n_init", "must be at least 1");
        }
        if !(self.tol.is_finite() && self.tol >= T::ZERO) {
            return bad("k-means: tol", "must be finite and >= 0");
        }
        Ok(())
    }
}

/// The result of a fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KMeansFit<T> {
    /// `Σ‖x − c_label‖²` of the returned centres and labels.
    pub inertia: T,
    /// Lloyd iterations of the returned run.
    pub n_iter: usize,
    /// Which run (0-based) was kept.
    pub run: usize,
}

/// Scratch elements of `T` [`kmeans_views_with`] needs for `n` points, `k`
/// centres and `d` features (saturating); it also takes `n` labels of
/// scratch.
pub const fn kmeans_scratch_len(n: usize, k: usize, d: usize) -> usize {
    let kd = k.saturating_mul(d);
    KMEANS_CHUNK
        .saturating_mul(k.saturating_add(d))
        .saturating_add(kd.saturating_mul(2))
        .saturating_add(k.saturating_mul(2))
        .saturating_add(n)
}

/// Working buffers of one fit.
struct Bufs<'s, T> {
    /// `(CHUNK, K)` dot products.
    dots: &'s mut [T],
    /// `(K, D)` current centres.
    cur: &'s mut [T],
    /// `(K, D)` next centres.
    next: &'s mut [T],
    /// `(D, CHUNK)` a chunk of points, transposed (the B of `C·Xᵀ`).
    xt: &'s mut [T],
    /// `K` point counts.
    counts: &'s mut [T],
    /// `K` squared centre norms.
    cnorm: &'s mut [T],
    /// `N` squared distances (k-means++, relocation).
    dist: &'s mut [T],
    /// `N` labels of the current run.
    labels: &'s mut [usize],
}

/// `‖a − b‖²`, computed directly (no expansion).
#[inline]
fn sq_dist<T: Real>(a: &[T], b: &[T]) -> T {
    let mut s = T::ZERO;
    for (&x, &y) in a.iter().zip(b) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Uniform index in `0..n` (`n ≥ 1`).
fn index<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    ((rng.next_u64() as u128 * n as u128) >> 64) as usize
}

/// Greedy k-means++ into `bufs.cur`.
fn plus_plus<T: Real, R: Rng + ?Sized>(
    x: MatRef<'_, T>,
    k: usize,
    rng: &mut R,
    bufs: &mut Bufs<'_, T>,
) {
    let (n, d) = x.shape();
    let trials = 2 + libm::log(k as f64) as usize;
    let first = index(rng, n);
    bufs.cur[..d].copy_from_slice(x.row_or_empty(first));
    let mut pot = T::ZERO;
    for i in 0..n {
        bufs.dist[i] = sq_dist(x.row_or_empty(i), &bufs.cur[..d]);
        pot += bufs.dist[i];
    }
    for c in 1..k {
        let mut best: Option<(usize, T)> = None;
        for _ in 0..trials {
            let r = uniform::<T, R>(rng) * pot;
            // First index whose cumulative sum reaches r (NumPy searchsorted).
            let mut cum = T::ZERO;
            let mut cand = n - 1;
            for (i, &v) in bufs.dist[..n].iter().enumerate() {
                cum += v;
                if cum >= r {
                    cand = i;
                    break;
                }
            }
            let xc = x.row_or_empty(cand);
            let mut p = T::ZERO;
            for i in 0..n {
                p += bufs.dist[i].min(sq_dist(x.row_or_empty(i), xc));
            }
            if best.is_none_or(|(_, bp)| p < bp) {
                best = Some((cand, p));
            }
        }
        let (cand, p) = best.unwrap_or((0, pot));
        let xc = x.row_or_empty(cand);
        bufs.cur[c * d..(c + 1) * d].copy_from_slice(xc);
        for i in 0..n {
            let dd = sq_dist(x.row_or_empty(i), xc);
            if dd < bufs.dist[i] {
                bufs.dist[i] = dd;
            }
        }
        pot = p;
    }
}

/// One assignment step with centres `bufs.cur`: labels (returns whether any
/// changed) and, when `update`, the sums and counts of the next centres.
fn assign<B: Backend, T: Real>(
    x: MatRef<'_, T>,
    k: usize,
    bufs: &mut Bufs<'_, T>,
    update: bool,
) -> Result<bool> {
    let (n, d) = x.shape();
    let cur = MatRef::new(&bufs.cur[..k * d], k, d)?;
    for (c, nrm) in bufs.cnorm[..k].iter_mut().enumerate() {
        let row = cur.row_or_empty(c);
        *nrm = B::raw_dot(row, row);
    }
    if update {
        bufs.next[..k * d].fill(T::ZERO);
        bufs.counts[..k].fill(T::ZERO);
    }
    let mut changed = false;
    let mut start = 0;
    while start < n {
        let rows = KMEANS_CHUNK.min(n - start);
        // C·Xᵀ `(K, rows)`: a matrix product whose long side (the points) is
        // the vectorised one, whatever K and D are.
        // Eight points at a time: their rows read whole, each column written
        // as a contiguous run of eight (the rows are in bounds by the view's
        // invariant; the span is checked once).
        let (data, stride) = x.raw_parts();
        let span = (rows - 1) * stride + d;
        let xs = data
            .get(start * stride..start * stride + span)
            .ok_or(Error::LengthMismatch {
                what: "k-means: points",
                expected: span,
                found: data.len().saturating_sub(start * stride),
            })?;
        let mut r0 = 0;
        while r0 + 8 <= rows {
            let blk: [&[T]; 8] =
                core::array::from_fn(|q| &xs[(r0 + q) * stride..(r0 + q) * stride + d]);
            for (j, col) in bufs.xt.chunks_exact_mut(rows).take(d).enumerate() {
                for (v, b) in col[r0..r0 + 8].iter_mut().zip(&blk) {
                    *v = b[j];
                }
            }
            r0 += 8;
        }
        for r in r0..rows {
            for (j, &v) in xs[r * stride..r * stride + d].iter().enumerate() {
                bufs.xt[j * rows + r] = v;
            }
        }
        let xt = MatRef::new(&bufs.xt[..d * rows], d, rows)?;
        let dots = MatMut::new(&mut bufs.dots[..k * rows], k, rows)?;
        B::raw_gemm(cur, xt, dots, Accumulate::Overwrite);
        let mut nearest = [0usize; KMEANS_CHUNK];
        B::raw_nearest(
            &bufs.dots[..k * rows],
            rows,
            &bufs.cnorm[..k],
            &mut nearest[..rows],
        );
        for (r, &best) in nearest[..rows].iter().enumerate() {
            let i = start + r;
            changed |= bufs.labels[i] != best;
            bufs.labels[i] = best;
            if update {
                B::raw_zip(
                    &mut bufs.next[best * d..(best + 1) * d],
                    x.row_or_empty(i),
                    false,
                );
                bufs.counts[best] += T::ONE;
            }
        }
        start += rows;
    }
    Ok(changed)
}

/// Relocates the clusters left empty by an assignment (sums and counts of the
/// next centres), as scikit-learn does: the list of empty clusters is taken
/// first; if every point sits exactly on its centre nothing moves; otherwise
/// the `i`-th empty cluster takes the `i`-th farthest point from its
/// (previous) centre, which leaves its old cluster's sum.
///
/// Returns whether any cluster was empty (then the labels no longer describe
/// the partition the new centres are the means of).
fn relocate_empty<T: Real>(x: MatRef<'_, T>, k: usize, bufs: &mut Bufs<'_, T>) -> bool {
    let (n, d) = x.shape();
    // Mark the clusters empty now (count −1), so that a cluster emptied by a
    // relocation below is not relocated in turn.
    let mut empty = 0;
    for c in bufs.counts[..k].iter_mut() {
        if *c == T::ZERO {
            *c = -T::ONE;
            empty += 1;
        }
    }
    if empty == 0 {
        return false;
    }
    let mut far_max = T::ZERO;
    for i in 0..n {
        let c = bufs.labels[i];
        let dd = sq_dist(x.row_or_empty(i), &bufs.cur[c * d..(c + 1) * d]);
        bufs.dist[i] = dd;
        far_max = far_max.max(dd);
    }
    let mut taken = 0;
    for e in 0..k {
        if bufs.counts[e] >= T::ZERO {
            continue;
        }
        if far_max == T::ZERO || taken == n {
            // Every point sits on its centre: relocating is pointless.
            bufs.counts[e] = T::ZERO;
            continue;
        }
        taken += 1;
        // The farthest point not yet taken (taken ones are marked −1); among
        // equally far points the last, as NumPy's `argpartition` leaves it for
        // one empty cluster.
        let mut far = 0;
        let mut fd = T::NEG_INFINITY;
        for (i, &v) in bufs.dist[..n].iter().enumerate() {
            if v >= fd {
                fd = v;
                far = i;
            }
        }
        bufs.dist[far] = -T::ONE;
        let old = bufs.labels[far];
        let xi = x.row_or_empty(far);
        let (o, nx) = (old * d, e * d);
        for (v, &xj) in bufs.next[o..o + d].iter_mut().zip(xi) {
            *v -= xj;
        }
        bufs.next[nx..nx + d].copy_from_slice(xi);
        bufs.counts[old] -= T::ONE;
        bufs.counts[e] = T::ONE;
    }
    true
}

/// Assignment, relocation and the new centres (means) into `bufs.next`;
/// returns whether any label changed and `Σ‖c_new − c_old‖²`.
fn lloyd_update<B: Backend, T: Real>(
    x: MatRef<'_, T>,
    k: usize,
    bufs: &mut Bufs<'_, T>,
) -> Result<(bool, T)> {
    let d = x.cols();
    let changed = assign::<B, T>(x, k, bufs, true)?;
    // An empty cluster moves centres without relabelling: not converged.
    let changed = relocate_empty::<T>(x, k, bufs) || changed;
    // Means; then a cluster still empty takes the mean of the most populous
    // one (the first on ties). scikit-learn copies in the same loop as it
    // averages, so an empty cluster listed before the biggest one gets its
    // unaveraged sum (a centre that is no cluster's mean, with labels that do
    // not match it); constml copies the mean.
    let mut big = 0;
    for (c, &cnt) in bufs.counts[..k].iter().enumerate() {
        if cnt > bufs.counts[big] {
            big = c;
        }
    }
    for c in 0..k {
        let cnt = bufs.counts[c];
        if cnt > T::ZERO {
            B::raw_affine(&mut bufs.next[c * d..(c + 1) * d], T::ONE / cnt, T::ZERO);
        }
    }
    let mut shift = T::ZERO;
    for c in 0..k {
        if bufs.counts[c] <= T::ZERO && c != big {
            bufs.next.copy_within(big * d..(big + 1) * d, c * d);
        }
        shift += sq_dist(
            &bufs.next[c * d..(c + 1) * d],
            &bufs.cur[c * d..(c + 1) * d],
        );
    }
    Ok((changed, shift))
}

/// One Lloyd run from `bufs.cur`; returns `(inertia, n_iter)`.
fn lloyd<B: Backend, T: Real>(
    x: MatRef<'_, T>,
    k: usize,
    cfg: &KMeansConfig<T>,
    tol: T,
    bufs: &mut Bufs<'_, T>,
) -> Result<(T, usize)> {
    let (n, d) = x.shape();
    let mut strict = false;
    let mut iters = 0;
    for it in 0..cfg.max_iter {
        iters = it + 1;
        let (changed, shift) = lloyd_update::<B, T>(x, k, bufs)?;
        let changed = changed || it == 0;
        core::mem::swap(&mut bufs.cur, &mut bufs.next);
        if !changed {
            strict = true;
            break;
        }
        if shift <= tol {
            break;
        }
    }
    if !strict {
        assign::<B, T>(x, k, bufs, false)?;
    }
    let mut inertia = T::ZERO;
    for i in 0..n {
        let c = bufs.labels[i];
        inertia += sq_dist(x.row_or_empty(i), &bufs.cur[c * d..(c + 1) * d]);
    }
    if !inertia.is_finite() {
        return Err(Error::InvalidParameter {
            what: "k-means: points",
            reason: "distances overflow the element type",
        });
    }
    Ok((inertia, iters))
}

/// `tol · mean_j var(X[:, j])` (population variances), scikit-learn's
/// absolute tolerance.
fn scaled_tol<T: Real>(x: MatRef<'_, T>, tol: T) -> T {
    let (n, d) = x.shape();
    if n == 0 || d == 0 {
        return T::ZERO;
    }
    let nf = T::from_usize(n);
    let mut total = T::ZERO;
    for j in 0..d {
        let mean = (0..n).fold(T::ZERO, |s, i| s + x.row_or_empty(i)[j]) / nf;
        let var = (0..n).fold(T::ZERO, |s, i| {
            let v = x.row_or_empty(i)[j] - mean;
            s + v * v
        }) / nf;
        total += var;
    }
    tol * total / T::from_usize(d)
}

/// Splits a flat scratch of [`kmeans_scratch_len`]`(n, k, d)` into the
/// working buffers.
fn split_scratch<'s, T>(
    scratch: &'s mut [T],
    n: usize,
    k: usize,
    d: usize,
    labels: &'s mut [usize],
) -> Result<Bufs<'s, T>> {
    let need = kmeans_scratch_len(n, k, d);
    let found = scratch.len();
    let s = scratch.get_mut(..need).ok_or(Error::BufferTooSmall {
        what: "k-means: scratch",
        needed: need,
        found,
    })?;
    let (dots, s) = s.split_at_mut(KMEANS_CHUNK * k);
    let (cur, s) = s.split_at_mut(k * d);
    let (next, s) = s.split_at_mut(k * d);
    let (xt, s) = s.split_at_mut(KMEANS_CHUNK * d);
    let (counts, s) = s.split_at_mut(k);
    let (cnorm, dist) = s.split_at_mut(k);
    Ok(Bufs {
        dots,
        cur,
        next,
        xt,
        counts,
        cnorm,
        dist,
        labels,
    })
}

crate::simd_default!(kmeans_views => kmeans_views_with<T: Real, R: Rng>(x: MatRef<'_, T>, init: KMeansInit<'_, T>, cfg: &KMeansConfig<T>, rng: &mut R, centers: MatMut<'_, T>, labels: &mut [usize], scratch: &mut [T], label_scratch: &mut [usize]) -> Result<KMeansFit<T>>);

/// k-means on views: `x` `(N, D)`, `K = centers.rows()` centres written to
/// `centers` `(K, D)`, labels to `labels` (`N`); `scratch` of
/// [`kmeans_scratch_len`]`(N, K, D)` and `label_scratch` of `N`. `Err` for
/// `K = 0`, `K > N`, non-finite data or centres, a bad configuration or
/// mismatched shapes — before anything is written.
#[allow(clippy::too_many_arguments)]
pub fn kmeans_views_with<B: Backend, T: Real, R: Rng>(
    x: MatRef<'_, T>,
    init: KMeansInit<'_, T>,
    cfg: &KMeansConfig<T>,
    rng: &mut R,
    centers: MatMut<'_, T>,
    labels: &mut [usize],
    scratch: &mut [T],
    label_scratch: &mut [usize],
) -> Result<KMeansFit<T>> {
    let (n, d) = x.shape();
    let k = centers.rows();
    check_fit(
        x,
        init,
        cfg,
        centers.shape(),
        labels.len(),
        label_scratch.len(),
    )?;
    let mut bufs = split_scratch(scratch, n, k, d, label_scratch)?;
    fit_bufs::<B, T, R>(x, init, cfg, rng, centers, labels, &mut bufs)
}

/// Labels every point of `x` `(N, D)` with its nearest centre of `centers`
/// `(K, D)` (squared Euclidean distance computed directly, lowest index on
/// ties) and returns the inertia `Σ‖x − c_label‖²` — scikit-learn's
/// `predict` and `score` (negated). No scratch.
pub fn kmeans_predict_views<T: Real>(
    x: MatRef<'_, T>,
    centers: MatRef<'_, T>,
    labels: &mut [usize],
) -> Result<T> {
    let (n, d) = x.shape();
    let k = centers.rows();
    if k == 0 {
        return Err(Error::Empty {
            what: "k-means predict: centers",
        });
    }
    if centers.cols() != d {
        return Err(Error::ShapeMismatch {
            what: "k-means predict: centers",
            expected: (k, d),
            found: centers.shape(),
        });
    }
    check_len("k-means predict: labels", n, labels.len())?;
    let mut inertia = T::ZERO;
    for (i, l) in labels.iter_mut().enumerate() {
        let xi = x.row_or_empty(i);
        let (mut best, mut bd) = (0, T::INFINITY);
        for c in 0..k {
            let dd = sq_dist(xi, centers.row_or_empty(c));
            if dd < bd {
                bd = dd;
                best = c;
            }
        }
        if !bd.is_finite() {
            return Err(Error::InvalidParameter {
                what: "k-means predict: points",
                reason: "a distance is NaN or infinite",
            });
        }
        *l = best;
        inertia += bd;
    }
    Ok(inertia)
}

crate::simd_default!(kmeans_lloyd_step_views => kmeans_lloyd_step_views_with<T: Real>(x: MatRef<'_, T>, centers: MatMut<'_, T>, labels: &mut [usize], scratch: &mut [T]) -> Result<T>);

/// One Lloyd iteration in place (scikit-learn's `lloyd_iter_chunked_dense`):
/// assigns every point of `x` `(N, D)` to its nearest centre of `centers`
/// `(K, D)` (labels into `labels`, `N`), relocates empty clusters, and moves
/// the centres to their means. Returns `Σ‖c_new − c_old‖²`. `scratch`:
/// [`kmeans_scratch_len`]`(N, K, D)`. This is the inner loop, so it does
/// not scan the data for NaN (a NaN point makes its centre NaN; nothing
/// panics); [`kmeans_views_with`] checks the data once per fit.
pub fn kmeans_lloyd_step_views_with<B: Backend, T: Real>(
    x: MatRef<'_, T>,
    mut centers: MatMut<'_, T>,
    labels: &mut [usize],
    scratch: &mut [T],
) -> Result<T> {
    let (n, d) = x.shape();
    let k = centers.rows();
    if k == 0 || k > n {
        return Err(Error::InvalidParameter {
            what: "k-means: K",
            reason: "needs 1 <= K <= N",
        });
    }
    if centers.cols() != d {
        return Err(Error::ShapeMismatch {
            what: "k-means: centers",
            expected: (k, d),
            found: centers.shape(),
        });
    }
    check_len("k-means: labels", n, labels.len())?;
    let mut bufs = split_scratch(scratch, n, k, d, labels)?;
    for c in 0..k {
        bufs.cur[c * d..(c + 1) * d].copy_from_slice(centers.row_mut_or_empty(c));
    }
    let (_, shift) = lloyd_update::<B, T>(x, k, &mut bufs)?;
    for c in 0..k {
        centers
            .row_mut_or_empty(c)
            .copy_from_slice(&bufs.next[c * d..(c + 1) * d]);
    }
    Ok(shift)
}

/// Caller-owned scratch of the const face for `N` points, `K` centres, `D`
/// features (`BYTES` for memory planning).
#[derive(Clone, Debug)]
pub struct KMeansScratch<T, const N: usize, const K: usize, const D: usize> {
    f: [[T; K]; KMEANS_CHUNK],
    c: [[[T; D]; K]; 2],
    xt: [[T; KMEANS_CHUNK]; D],
    k2: [[T; K]; 2],
    dist: [T; N],
    labels: [usize; N],
}

impl<T: Real, const N: usize, const K: usize, const D: usize> KMeansScratch<T, N, K, D> {
    /// Zeroed scratch (`const`, so it can live in a `static`).
    pub const fn new() -> Self {
        Self {
            f: [[T::ZERO; K]; KMEANS_CHUNK],
            c: [[[T::ZERO; D]; K]; 2],
            xt: [[T::ZERO; KMEANS_CHUNK]; D],
            k2: [[T::ZERO; K]; 2],
            dist: [T::ZERO; N],
            labels: [0; N],
        }
    }
    /// Size in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();
}

impl<T: Real, const N: usize, const K: usize, const D: usize> Default
    for KMeansScratch<T, N, K, D>
{
    fn default() -> Self {
        Self::new()
    }
}

/// k-means with `K` centres of `D` features (const face; `1 ≤ K ≤ N` is
/// checked at compile time in [`fit`](KMeans::fit)).
///
/// ```compile_fail,E0080
/// use constml::ml::{KMeans, KMeansInit, KMeansScratch};
/// use constml::rand_core::SeedableRng;
/// let x = [[0.0f32; 2]; 2];
/// let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(1);
/// let (mut c, mut l) = ([[0.0f32; 2]; 3], [0usize; 2]); // K = 3 > N = 2
/// let mut s = KMeansScratch::new();
/// let _ = KMeans::<f32, 3, 2>::new().fit(&x, KMeansInit::PlusPlus, &mut rng, &mut c, &mut l, &mut s);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KMeans<T, const K: usize, const D: usize, B = Simd> {
    cfg: KMeansConfig<T>,
    _b: core::marker::PhantomData<B>,
}

impl<T: Real, const K: usize, const D: usize, B: Backend> Default for KMeans<T, K, D, B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real, const K: usize, const D: usize, B: Backend> KMeans<T, K, D, B> {
    /// Default settings ([`KMeansConfig::default`]).
    pub fn new() -> Self {
        Self {
            cfg: KMeansConfig::default(),
            _b: core::marker::PhantomData,
        }
    }
    /// Sets `max_iter`.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.cfg.max_iter = n;
        self
    }
    /// Sets `tol`.
    pub fn tol(mut self, tol: T) -> Self {
        self.cfg.tol = tol;
        self
    }
    /// Sets `n_init`.
    pub fn n_init(mut self, n: usize) -> Self {
        self.cfg.n_init = n;
        self
    }
    /// The settings.
    pub fn config(&self) -> &KMeansConfig<T> {
        &self.cfg
    }

    /// Fits `N` points; see [`kmeans_views_with`].
    pub fn fit<const N: usize, R: Rng>(
        &self,
        x: &[[T; D]; N],
        init: KMeansInit<'_, T>,
        rng: &mut R,
        centers: &mut [[T; D]; K],
        labels: &mut [usize; N],
        scratch: &mut KMeansScratch<T, N, K, D>,
    ) -> Result<KMeansFit<T>> {
        const { assert!(K >= 1 && K <= N, "KMeans: needs 1 <= K <= N") };
        let KMeansScratch {
            f,
            c,
            xt,
            k2,
            dist,
            labels: ls,
        } = scratch;
        let [cur, next] = c;
        let [counts, cnorm] = k2;
        let mut bufs = Bufs {
            dots: f.as_flattened_mut(),
            cur: cur.as_flattened_mut(),
            next: next.as_flattened_mut(),
            xt: xt.as_flattened_mut(),
            counts,
            cnorm,
            dist,
            labels: ls,
        };
        let (xv, cv) = (MatRef::from_array(x), MatMut::from_array(centers));
        check_fit(xv, init, &self.cfg, cv.shape(), N, N)?;
        fit_bufs::<B, T, R>(xv, init, &self.cfg, rng, cv, labels, &mut bufs)
    }
}

/// `Err` if any element of `m` is NaN or infinite.
fn check_finite_rows<T: Real>(what: &'static str, m: MatRef<'_, T>) -> Result<()> {
    for i in 0..m.rows() {
        if m.row_or_empty(i).iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidParameter {
                what,
                reason: "contains NaN or an infinity",
            });
        }
    }
    Ok(())
}

/// The checks of a fit, before anything is written.
fn check_fit<T: Real>(
    x: MatRef<'_, T>,
    init: KMeansInit<'_, T>,
    cfg: &KMeansConfig<T>,
    centers: (usize, usize),
    labels: usize,
    label_scratch: usize,
) -> Result<()> {
    cfg.check()?;
    let (n, d) = x.shape();
    let k = centers.0;
    if k == 0 || k > n {
        return Err(Error::InvalidParameter {
            what: "k-means: K",
            reason: "needs 1 <= K <= N",
        });
    }
    if centers.1 != d {
        return Err(Error::ShapeMismatch {
            what: "k-means: centers",
            expected: (k, d),
            found: centers,
        });
    }
    check_len("k-means: labels", n, labels)?;
    check_len("k-means: label scratch", n, label_scratch)?;
    check_finite_rows("k-means: points", x)?;
    if let KMeansInit::Given(c) = init {
        if c.shape() != (k, d) {
            return Err(Error::ShapeMismatch {
                what: "k-means: initial centers",
                expected: (k, d),
                found: c.shape(),
            });
        }
        check_finite_rows("k-means: initial centers", c)?;
    }
    Ok(())
}

/// Runs the fit over prepared buffers (both faces).
fn fit_bufs<B: Backend, T: Real, R: Rng>(
    x: MatRef<'_, T>,
    init: KMeansInit<'_, T>,
    cfg: &KMeansConfig<T>,
    rng: &mut R,
    mut centers: MatMut<'_, T>,
    labels: &mut [usize],
    bufs: &mut Bufs<'_, T>,
) -> Result<KMeansFit<T>> {
    let (k, d) = centers.shape();
    let tol = scaled_tol(x, cfg.tol);
    let runs = match init {
        KMeansInit::Given(_) => 1,
        KMeansInit::PlusPlus => cfg.n_init,
    };
    let mut best: Option<KMeansFit<T>> = None;
    for run in 0..runs {
        match init {
            KMeansInit::Given(c) => {
                for i in 0..k {
                    bufs.cur[i * d..(i + 1) * d].copy_from_slice(c.row_or_empty(i));
                }
            }
            KMeansInit::PlusPlus => plus_plus::<T, R>(x, k, rng, bufs),
        }
        let (inertia, n_iter) = lloyd::<B, T>(x, k, cfg, tol, bufs)?;
        if best.is_none_or(|b| inertia < b.inertia) {
            best = Some(KMeansFit {
                inertia,
                n_iter,
                run,
            });
            labels.copy_from_slice(bufs.labels);
            for i in 0..k {
                centers
                    .row_mut_or_empty(i)
                    .copy_from_slice(&bufs.cur[i * d..(i + 1) * d]);
            }
        }
    }
    best.ok_or(Error::Empty { what: "k-means" })
}

/// One online (MacQueen) k-means step: the centre nearest to `x` (lowest
/// index on ties) moves by `(x − c)/n_c`, its count `n_c` incremented first.
/// `centers` `(K, D)`, `counts` `K` (the points each centre stands for so
/// far: 1 for a centre seeded with a sample; a centre with count 0 is
/// replaced by the first sample it wins). Returns the centre's index.
pub fn kmeans_online_update<T: Real>(
    mut centers: MatMut<'_, T>,
    counts: &mut [u64],
    x: &[T],
) -> Result<usize> {
    let (k, d) = centers.shape();
    if k == 0 {
        return Err(Error::Empty {
            what: "k-means online: centers",
        });
    }
    check_len("k-means online: counts", k, counts.len())?;
    check_len("k-means online: x", d, x.len())?;
    if x.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidParameter {
            what: "k-means online: x",
            reason: "contains NaN or an infinity",
        });
    }
    let mut best = 0;
    let mut bd = T::INFINITY;
    for c in 0..k {
        let dd = sq_dist(centers.as_ref().row_or_empty(c), x);
        if dd < bd {
            bd = dd;
            best = c;
        }
    }
    counts[best] = counts[best].saturating_add(1);
    let step = T::ONE / T::from_f64(counts[best] as f64);
    for (c, &v) in centers.row_mut_or_empty(best).iter_mut().zip(x) {
        *c += (v - *c) * step;
    }
    Ok(best)
}

#[cfg(feature = "std")]
pub use dynamic::kmeans_dyn;

#[cfg(feature = "std")]
mod dynamic {
    use std::vec::Vec;

    use super::*;
    use crate::matrix::{Matrix, filled_vec, zeros_vec};

    /// k-means with `k` centres on an owned matrix (`std`): returns the
    /// centres `(k, D)`, the labels and the fit (see [`kmeans_views_with`]).
    ///
    /// ```
    /// use constml::{Matrix, ml::{kmeans_dyn, KMeansConfig, KMeansInit}};
    /// use constml::rand_core::SeedableRng;
    /// let x = Matrix::from_vec(4, 1, vec![0.0f64, 0.2, 9.0, 9.2])?;
    /// let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    /// let cfg = KMeansConfig { n_init: 4, ..KMeansConfig::default() };
    /// let (centers, labels, fit) = kmeans_dyn(&x, 2, KMeansInit::PlusPlus, &cfg, &mut rng)?;
    /// assert!((fit.inertia - 0.04).abs() < 1e-12);
    /// assert_eq!(centers.shape(), (2, 1));
    /// assert_eq!(labels[0], labels[1]);
    /// # Ok::<(), constml::Error>(())
    /// ```
    pub fn kmeans_dyn<T: Real, R: Rng>(
        x: &Matrix<T>,
        k: usize,
        init: KMeansInit<'_, T>,
        cfg: &KMeansConfig<T>,
        rng: &mut R,
    ) -> Result<(Matrix<T>, Vec<usize>, KMeansFit<T>)> {
        let (n, d) = x.shape();
        if k == 0 || k > n {
            return Err(Error::InvalidParameter {
                what: "k-means: K",
                reason: "needs 1 <= K <= N",
            });
        }
        let mut centers = Matrix::zeros(k, d)?;
        let mut labels = filled_vec("k-means: labels", n, 0usize)?;
        let mut label_scratch = filled_vec("k-means: labels", n, 0usize)?;
        let mut scratch = zeros_vec("k-means: scratch", kmeans_scratch_len(n, k, d))?;
        let fit = kmeans_views_with::<Simd, T, R>(
            x.view(),
            init,
            cfg,
            rng,
            centers.view_mut(),
            &mut labels,
            &mut scratch,
            &mut label_scratch,
        )?;
        Ok((centers, labels, fit))
    }
}
