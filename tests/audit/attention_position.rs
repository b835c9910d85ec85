//! Bad-input audit of `attention::*` and `position::*`: every public function's
//! invalid inputs, the exact `Err` variant each one gets, state left unchanged
//! after an `Err` where the function is stateful, and the documented NaN
//! propagation. Accessors and builders are called at their edges (empty, one
//! element, an index past the end).

use constml::attention::*;
use constml::position::*;
use constml::{Error, MatMut, MatRef, Matrix, Scalar};

// ------------------------------------------------------------------ helpers

fn is_invalid(r: &constml::Result<impl Sized>) -> bool {
    matches!(r, Err(Error::InvalidParameter { .. }))
}
fn is_shape(r: &constml::Result<impl Sized>) -> bool {
    matches!(r, Err(Error::ShapeMismatch { .. }))
}
fn is_len(r: &constml::Result<impl Sized>) -> bool {
    matches!(r, Err(Error::LengthMismatch { .. }))
}
fn is_small(r: &constml::Result<impl Sized>) -> bool {
    matches!(r, Err(Error::BufferTooSmall { .. }))
}
fn is_range(r: &constml::Result<impl Sized>) -> bool {
    matches!(r, Err(Error::OutOfRange { .. }))
}

/// A predicate on a result (which `Err` variant it must be).
type Check = fn(&constml::Result<()>) -> bool;

/// `assert_err!(call => Variant)`: `call` returns `Err(Error::Variant { .. })`;
/// `assert_err!(call => Variant { field: value, .. })` also pins those fields.
/// A trailing `, "format", args` names the case; the message shows the call
/// and what it returned.
macro_rules! assert_err {
    ($r:expr => $v:ident $(, $($case:tt)+)?) => {
        assert_err!($r => $v { .. } $(, $($case)+)?)
    };
    ($r:expr => $v:ident { $($f:tt)* } $(, $($case:tt)+)?) => {{
        let r = &$r;
        let call = stringify!($r);
        $(let call = format!("{call} ({})", format_args!($($case)+));)?
        assert!(matches!(r, Err(Error::$v { $($f)* })), "{call}: {r:?}");
    }};
}

fn mat(rows: usize, cols: usize, f: impl Fn(usize) -> f32) -> Matrix<f32> {
    Matrix::from_vec(rows, cols, (0..rows * cols).map(f).collect()).unwrap()
}

/// Everything a cache holds, for "unchanged after an `Err`" checks.
fn snapshot<C: KvStore<f32>>(c: &C) -> (usize, usize, Vec<f32>) {
    let mut data = Vec::new();
    for g in 0..c.kv_heads() {
        for m in [c.head_keys(g).unwrap(), c.head_values(g).unwrap()] {
            for r in 0..m.rows() {
                data.extend_from_slice(m.row(r).unwrap());
            }
        }
    }
    (c.oldest_position(), c.next_position(), data)
}

// ------------------------------------------------------------------ attention::sdpa

const Q: [[f32; 2]; 2] = [[0.1, 0.2], [0.3, -0.4]];
const K: [[f32; 2]; 3] = [[0.5, -0.1], [0.2, 0.7], [-0.3, 0.4]];
const V: [[f32; 2]; 3] = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];

/// Runs the six SDPA faces (const, views, dyn; Simd and Scalar) on (2, 3)
/// attention with `opts`.
fn sdpa_all(
    q: &[[f32; 2]; 2],
    k: &[[f32; 2]; 3],
    opts: &AttnOptions<'_, f32>,
) -> Vec<constml::Result<()>> {
    let mut res = Vec::new();
    let (mut out, mut w) = ([[0.0f32; 2]; 2], [[0.0f32; 3]; 2]);
    res.push(sdpa(q, k, &V, &mut out, &mut w, opts));
    res.push(sdpa_with::<Scalar, f32, 2, 3, 2, 2>(
        q, k, &V, &mut out, &mut w, opts,
    ));
    let mut flat = [0.0f32; 6];
    let (qv, kv, vv) = (
        MatRef::from_array(q),
        MatRef::from_array(k),
        MatRef::from_array(&V),
    );
    let out_v = MatMut::from_array(&mut out);
    res.push(sdpa_views(qv, kv, vv, out_v, &mut flat, opts));
    let out_v = MatMut::from_array(&mut out);
    res.push(sdpa_views_with::<Scalar, f32>(
        qv, kv, vv, out_v, &mut flat, opts,
    ));
    let qm = mat(2, 2, |i| q[i / 2][i % 2]);
    let km = mat(3, 2, |i| k[i / 2][i % 2]);
    let vm = mat(3, 2, |i| V[i / 2][i % 2]);
    res.push(sdpa_dyn(&qm, &km, &vm, opts).map(|_| ()));
    res.push(sdpa_dyn_with::<Scalar, f32>(&qm, &km, &vm, opts).map(|_| ()));
    res
}

#[test]
fn audit_sdpa_rejects_bad_options() {
    let mask = [[true; 2]; 2]; // (2, 2), attention is (2, 3)
    let keys = [false; 2]; // 2 keys, attention has 3
    let bias = [[0.0f32; 3]; 3]; // (3, 3)
    let per_head = [[0.0f32; 3]; 1]; // 1 row, head 0 needs 2
    let slopes = [0.5f32];
    let alibi = Alibi::new(&slopes, AlibiForm::Causal).unwrap();
    let hook = |_h: usize, _i: usize, _j: usize| 0.0f32;
    let o = AttnOptions::new();
    let cases: Vec<(AttnOptions<'_, f32>, Check)> = vec![
        (o.window(0), is_invalid),
        (o.causal().window(0), is_invalid),
        (o.scale(f32::NAN), is_invalid),
        (o.scale(f32::INFINITY), is_invalid),
        (o.scale(f32::NEG_INFINITY), is_invalid),
        (o.allow(MatRef::from_array(&mask)), is_shape),
        (o.block(MatRef::from_array(&mask)), is_shape),
        (o.key_allow(&keys), is_len),
        (o.key_block(&keys), is_len),
        (o.bias(MatRef::from_array(&bias)), is_shape),
        (o.bias_per_head(MatRef::from_array(&per_head)), is_shape),
        (o.query_start(usize::MAX), is_invalid),
        (o.causal().query_start(usize::MAX - 1), is_invalid),
    ];
    for (i, (opts, check)) in cases.iter().enumerate() {
        for (face, r) in sdpa_all(&Q, &K, opts).iter().enumerate() {
            assert!(check(r), "case {i}, face {face}: {r:?}");
        }
    }
    // The window and scale errors name their parameter.
    let r = sdpa_all(&Q, &K, &o.window(0));
    assert_err!(r[0] => InvalidParameter { what: "attention: window", .. });
    let r = sdpa_all(&Q, &K, &o.scale(f32::NAN));
    assert_err!(r[2] => InvalidParameter { what: "attention: scale", .. });
    // Finite scales of any sign (zero too) are fine, so is the largest start.
    for opts in [0.0f32, -3.0, f32::MAX].map(|s| o.scale(s)) {
        assert!(sdpa_all(&Q, &K, &opts).iter().all(|r| r.is_ok()));
    }
    let opts = o.query_start(usize::MAX - 2);
    assert!(sdpa_all(&Q, &K, &opts).iter().all(|r| r.is_ok()));

    // Score hooks with bottom-right queries need NQ ≤ NK: 3 queries, 2 keys.
    let (q3, k2, v2) = ([[0.0f32; 2]; 3], [[0.0f32; 2]; 2], [[1.0f32; 2]; 2]);
    let (mut out, mut w) = ([[0.0f32; 2]; 3], [[0.0f32; 2]; 3]);
    let mut nq3 = |o: &AttnOptions<'_, f32>| sdpa(&q3, &k2, &v2, &mut out, &mut w, o);
    let shaw = ShawRelative::from_arrays(Some(&[[0.0f32; 2]; 3]), None::<&[[f32; 2]; 3]>);
    assert_err!(nq3(&o.score_bias(&hook)) => InvalidParameter);
    assert_err!(nq3(&o.relative(&shaw)) => InvalidParameter);
    // With explicit query positions the same call is fine.
    assert!(nq3(&o.score_bias(&hook).query_start(0)).is_ok());

    // A hook that knows its heads rejects a head past them (views face, head 1).
    let o = o.score_bias(&alibi);
    let (q, k, v) = (
        MatRef::from_array(&Q),
        MatRef::from_array(&K),
        MatRef::from_array(&V),
    );
    let seg = [KvSegment::new(k, v, 0)];
    let (mut out, mut flat) = ([[0.0f32; 2]; 2], [0.0f32; 6]);
    let mut head = |h| attend_views(q, &seg, MatMut::from_array(&mut out), &mut flat, h, &o);
    assert_err!(head(1) => OutOfRange { index: 1, len: 1, .. });
    assert!(head(0).is_ok());
}

#[test]
fn audit_sdpa_rejects_bad_shapes() {
    let o = AttnOptions::<f32>::new();
    let q = mat(2, 2, |i| i as f32);
    let k = mat(3, 2, |i| i as f32 / 10.0);
    let v = mat(3, 2, |i| i as f32);
    let k3 = mat(3, 3, |_| 0.0); // width 3 ≠ dk 2
    let v4 = mat(4, 2, |_| 0.0); // 4 rows ≠ 3 keys
    for (k, v) in [(&k3, &v), (&k, &v4)] {
        assert_err!(sdpa_dyn(&q, k, v, &o) => ShapeMismatch);
        assert_err!(sdpa_dyn_with::<Scalar, f32>(&q, k, v, &o) => ShapeMismatch);
    }
    // Views: out rows, out width (≠ value width), scratch (a longer one is fine).
    let mut buf = [0.0f32; 6];
    let mut views = |[rows, cols]: [usize; 2], scratch: usize, scalar: bool| {
        let out = MatMut::new(&mut buf[..rows * cols], rows, cols).unwrap();
        let w = &mut vec![0.0f32; scratch];
        let (q, k, v) = (q.view(), k.view(), v.view());
        if scalar {
            sdpa_views_with::<Scalar, f32>(q, k, v, out, w, &o)
        } else {
            sdpa_views(q, k, v, out, w, &o)
        }
    };
    assert_err!(views([3, 2], 6, false) => ShapeMismatch);
    assert_err!(views([2, 3], 6, false) => ShapeMismatch);
    assert_err!(views([2, 2], 5, true) => BufferTooSmall { needed: 6, found: 5, .. });
    assert!(views([2, 2], 9, false).is_ok());
    // Zero keys: widths are free, rows are fully masked (zeros).
    let none = Matrix::<f32>::zeros(0, 5).unwrap();
    let (out, w) = sdpa_dyn(&q, &none, &Matrix::zeros(0, 2).unwrap(), &o).unwrap();
    assert_eq!((out.as_slice(), w.shape()), (&[0.0f32; 4][..], (2, 0)));
}

#[test]
fn audit_sdpa_nan_propagates_to_affected_rows() {
    let o = AttnOptions::<f32>::new();
    // Output and weights start at 7, so the zeros below are written by the call.
    let run = |q: &[[f32; 2]; 2], k: &[[f32; 2]; 3], v: &[[f32; 2]; 3], o: AttnOptions<'_, f32>| {
        let (mut out, mut w) = ([[7.0f32; 2]; 2], [[7.0f32; 3]; 2]);
        sdpa(q, k, v, &mut out, &mut w, &o).unwrap();
        (out, w)
    };
    let finite = |row: [f32; 2]| row.iter().all(|x| x.is_finite());
    let nan = |row: [f32; 2]| row.iter().all(|x| x.is_nan());
    // NaN in query row 1: only row 1 is NaN.
    let mut q = Q;
    q[1][0] = f32::NAN;
    let (out, _) = run(&q, &K, &V, o);
    assert!(finite(out[0]) && nan(out[1]));
    // NaN in a key every row sees: every row is NaN.
    let mut k = K;
    k[1][1] = f32::NAN;
    let (out, _) = run(&Q, &k, &V, o);
    assert!(nan(out[0]) && nan(out[1]));
    // The same key hidden by a causal (top-left) mask from row 0 only.
    let (out, _) = run(&Q, &k, &V, o.causal_top_left());
    assert!(finite(out[0]) && nan(out[1]));
    // NaN in a value a row attends to: that row is NaN.
    let mut v = V;
    v[0][0] = f32::NAN;
    let (out, _) = run(&Q, &K, &v, o);
    assert!(out[0][0].is_nan() && out[1][0].is_nan());
    // A score that overflows to +∞ makes its row NaN; nothing panics.
    let (out, _) = run(&[[f32::MAX; 2]; 2], &[[f32::MAX; 2]; 3], &V, o);
    assert!(nan(out[0]) && nan(out[1]));
    // A fully masked row is zeros, not NaN.
    let block = [[true; 3], [false; 3]];
    let (out, w) = run(&Q, &K, &V, o.block(MatRef::from_array(&block)));
    assert_eq!((out[0], w[0]), ([0.0; 2], [0.0; 3]));
    // A NaN key that a row does not see (masked) leaves that row finite.
    let mut k = K;
    k[2][0] = f32::NAN;
    let (out, _) = run(&Q, &k, &V, o.key_block(&[false, false, true]));
    assert!(finite(out[0]) && finite(out[1]));
}

/// Finding (this audit): a NaN in the value of a masked key reached a fully
/// masked row through `0 · NaN` in `weights · V`, against the promise of zeros.
/// A fully masked row is now zeros whatever the values hold; a row that masks
/// only that key still sees the NaN through `0 · NaN`, as in PyTorch (the
/// module docs say so).
#[test]
fn audit_sdpa_masked_nan_value_does_not_reach_masked_rows() {
    for scalar in [true, false] {
        let mut v = V;
        v[2][0] = f32::NAN;
        let (mut out, mut w) = ([[0.0f32; 2]; 2], [[0.0f32; 3]; 2]);
        // Row 0 fully masked, row 1 masks key 2 only.
        let block = [[true; 3], [false, false, true]];
        let o = AttnOptions::new().block(MatRef::from_array(&block));
        if scalar {
            sdpa_with::<Scalar, f32, 2, 3, 2, 2>(&Q, &K, &v, &mut out, &mut w, &o).unwrap();
        } else {
            sdpa(&Q, &K, &v, &mut out, &mut w, &o).unwrap();
        }
        assert_eq!((w[0], w[1][2]), ([0.0; 3], 0.0));
        assert_eq!(out[0], [0.0, 0.0], "fully masked row");
        assert!(out[1][0].is_nan() && out[1][1].is_finite(), "{:?}", out[1]);
    }
}

#[test]
fn audit_attend_views_rejects_bad_segments() {
    let o = AttnOptions::<f32>::new();
    let q = MatRef::from_array(&Q);
    let (k, v) = (MatRef::from_array(&K), MatRef::from_array(&V));
    let (mut out, mut s) = ([[0.0f32; 2]; 2], [0.0f32; 12]);
    // Both faces with the first `n` scratch elements; they agree.
    let mut run = |seg: &[KvSegment<'_, f32>], n: usize, o: &AttnOptions<'_, f32>| {
        let r = attend_views(q, seg, MatMut::from_array(&mut out), &mut s[..n], 0, o);
        let out = MatMut::from_array(&mut out);
        assert_eq!(
            attend_views_with::<Scalar, f32>(q, seg, out, &mut s[..n], 0, o),
            r
        );
        r
    };
    // Explicit positions of the wrong length.
    let pos = [0usize, 1];
    let seg = [KvSegment {
        keys: k,
        values: v,
        positions: KeyPositions::Explicit(&pos),
    }];
    assert_err!(run(&seg, 12, &o) => LengthMismatch);
    // Keys of another width than the queries, in the second run.
    let (k3, v1, k1) = ([[0.0f32; 3]; 1], [[0.0f32; 2]; 1], [[0.0f32; 2]; 1]);
    let (k3, v1, k1) = (
        MatRef::from_array(&k3),
        MatRef::from_array(&v1),
        MatRef::from_array(&k1),
    );
    let wide = [KvSegment::new(k, v, 0), KvSegment::new(k3, v1, 3)];
    assert_err!(run(&wide, 12, &o) => ShapeMismatch);
    // Values with another row count than the keys (even an empty run).
    let e: [[f32; 2]; 0] = [];
    assert_err!(run(&[KvSegment::new(k, v1, 0)], 12, &o) => ShapeMismatch);
    assert_err!(run(&[KvSegment::new(MatRef::from_array(&e), v1, 0)], 12, &o) => ShapeMismatch);
    // Scratch shorter than NQ·NK over all runs (2 · 4 = 8).
    let seg = [KvSegment::new(k, v, 0), KvSegment::new(k1, v1, 3)];
    assert_err!(run(&seg, 7, &o) => BufferTooSmall { needed: 8, found: 7, .. });
    // Relative terms whose length is not DK (keys) or DV (values).
    let seg = [KvSegment::new(k, v, 0)];
    let (ak3, av1) = ([[0.0f32; 3]; 3], [[0.0f32; 1]; 3]);
    let shaw = ShawRelative::from_arrays(Some(&ak3), None::<&[[f32; 2]; 3]>);
    assert_err!(run(&seg, 12, &o.relative(&shaw)) => LengthMismatch { expected: 2, found: 3, .. });
    let shaw = ShawRelative::from_arrays(None::<&[[f32; 2]; 3]>, Some(&av1));
    assert_err!(run(&seg, 12, &o.relative(&shaw)) => LengthMismatch { expected: 2, found: 1, .. });
    // No runs at all: rows fully masked, zeros.
    out = [[7.0; 2]; 2];
    attend_views(q, &[], MatMut::from_array(&mut out), &mut [], 0, &o).unwrap();
    assert_eq!(out, [[0.0; 2]; 2]);
}

#[test]
fn audit_sdpa_batched_rejects_bad_shapes() {
    let s = AttnShape {
        batch: 2,
        heads: 2,
        kv_heads: 1,
        nq: 1,
        nk: 2,
        dk: 1,
        dv: 1,
    };
    let (q, k, v) = (vec![0.5f32; 4], vec![0.1f32; 4], vec![1.0f32; 4]);
    let o = AttnOptions::new();
    let mut out = vec![0.0f32; 4];
    let mut sc = vec![0.0f32; 2];
    for bad in [
        (AttnShape { heads: 0, ..s }),
        (AttnShape { kv_heads: 0, ..s }),
        (AttnShape {
            heads: 3,
            kv_heads: 2,
            ..s
        }),
        (AttnShape {
            batch: usize::MAX,
            nq: 2,
            ..s
        }),
    ] {
        let r = sdpa_batched_views(&q, &k, &v, bad, &mut out, &mut sc, &o);
        assert!(is_invalid(&r), "{bad:?}: {r:?}");
        let r = sdpa_batched_dyn(&q, &k, &v, bad, &o);
        assert!(is_invalid(&r), "{bad:?}: {r:?}");
    }
    // Slice lengths: q, k, v, out.
    for (qq, kk, vv) in [
        (&q[..3], &k[..], &v[..]),
        (&q[..], &k[..3], &v[..]),
        (&q[..], &k[..], &v[..3]),
    ] {
        let r = sdpa_batched_views_with::<Scalar, f32>(qq, kk, vv, s, &mut out, &mut sc, &o);
        assert!(is_len(&r), "{r:?}");
        let r = sdpa_batched_dyn_with::<Scalar, f32>(qq, kk, vv, s, &o);
        assert!(is_len(&r), "{r:?}");
    }
    assert_err!(sdpa_batched_views(&q, &k, &v, s, &mut out[..3], &mut sc, &o) => LengthMismatch);
    // Scratch below nq·nk.
    assert_err!(sdpa_batched_views(&q, &k, &v, s, &mut out, &mut sc[..1], &o) => BufferTooSmall);
    // Options: a per-head bias for one head with two heads; a hook of one head.
    let ph = [[0.0f32; 2]; 1];
    let r = sdpa_batched_dyn(&q, &k, &v, s, &o.bias_per_head(MatRef::from_array(&ph)));
    assert!(is_shape(&r), "{r:?}");
    let slopes = [0.5f32];
    let alibi = Alibi::new(&slopes, AlibiForm::Symmetric).unwrap();
    let r = sdpa_batched_dyn(&q, &k, &v, s, &o.score_bias(&alibi));
    assert_err!(r => OutOfRange { index: 1, len: 1, .. });
    assert_err!(sdpa_batched_dyn(&q, &k, &v, s, &o.window(0)) => InvalidParameter);
    // An output too large to allocate (2^60 elements, no overflow).
    let huge = AttnShape {
        batch: 1 << 20,
        heads: 1 << 20,
        kv_heads: 1,
        nq: 1 << 20,
        nk: 1,
        dk: 1,
        dv: 1,
    };
    assert_err!(sdpa_batched_dyn::<f32>(&[], &[], &[], huge, &o) => InvalidParameter);
    // Valid and empty shapes.
    assert_eq!(sdpa_batched_dyn(&q, &k, &v, s, &o).unwrap(), vec![1.0; 4]);
    let empty = AttnShape { batch: 0, ..s };
    assert_eq!(
        sdpa_batched_dyn(&[], &[], &[], empty, &o).unwrap(),
        Vec::<f32>::new()
    );
    // NaN in one batch entry's query stays in its head's output.
    let mut qn = q.clone();
    qn[0] = f32::NAN;
    let out = sdpa_batched_dyn(&qn, &k, &v, s, &o).unwrap();
    assert!(out[0].is_nan() && out[1..].iter().all(|x| x.is_finite()));
}

#[test]
fn audit_sdpa_helpers_at_edges() {
    // Scratch lengths saturate; AttnShape::lens reports overflow.
    assert_eq!(sdpa_scratch_len(0, 7), 0);
    assert_eq!(sdpa_scratch_len(1, 1), 1);
    assert_eq!(sdpa_scratch_len(usize::MAX, 2), usize::MAX);
    let s = AttnShape {
        batch: 1,
        heads: 1,
        kv_heads: 1,
        nq: usize::MAX,
        nk: 2,
        dk: 2,
        dv: 1,
    };
    assert_eq!(s.scratch_len(), usize::MAX);
    assert_err!(s.lens() => InvalidParameter { what: "attention: shape", .. });
    assert_eq!(AttnShape::default().lens().unwrap(), (0, 0, 0, 0));
    assert_eq!(AttnShape::default().scratch_len(), 0);
    // Key positions: saturating range, usize::MAX past an explicit list.
    assert_eq!(KeyPositions::Range(usize::MAX).at(3), usize::MAX);
    assert_eq!(KeyPositions::Range(4).at(0), 4);
    assert_eq!(KeyPositions::Explicit(&[9]).at(0), 9);
    assert_eq!(KeyPositions::Explicit(&[9]).at(1), usize::MAX);
    assert_eq!(KeyPositions::Explicit(&[]).at(0), usize::MAX);
    // Segments.
    let e = KvSegment::<f32>::empty();
    assert!(e.is_empty());
    assert_eq!(e.len(), 0);
    let (k, v) = (
        MatRef::from_array(&[[1.0f32]]),
        MatRef::from_array(&[[2.0f32]]),
    );
    let one = KvSegment::new(k, v, 5);
    assert!(!one.is_empty() && one.len() == 1 && one.positions == KeyPositions::Range(5));
    // Hooks: a closure takes any head; the provided add_to_row adds bias().
    let hook = |h: usize, i: usize, j: usize| (h * 100 + i * 10 + j) as f32;
    assert_eq!(ScoreBias::<f32>::heads(&hook), None);
    assert_eq!(hook.bias(1, 2, 3), 123.0);
    let mut row = [1.0f32; 2];
    hook.add_to_row(0, 0, KeyPositions::Explicit(&[4, 5]), &mut row);
    assert_eq!(row, [5.0, 6.0]);
    let mut empty_row: [f32; 0] = [];
    hook.add_to_row(0, 0, KeyPositions::Range(0), &mut empty_row);
    // Relative terms: a term for a pair, or None when the table is absent.
    let ak = [[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
    let shaw = ShawRelative::from_arrays(Some(&ak), None::<&[[f32; 2]; 3]>);
    assert_eq!(shaw.key_term(0, 0, 100), Some(&[5.0f32, 6.0][..]));
    assert_eq!(shaw.value_term(0, 0, 100), None);
    // Builders only record; they accept anything.
    let mask = [[true; 1]; 1];
    let keys = [true];
    let b = [[0.0f32]];
    let o = AttnOptions::new()
        .scale(f32::NAN)
        .window(0)
        .query_start(usize::MAX)
        .allow(MatRef::from_array(&mask));
    assert!(o.scale.unwrap().is_nan() && o.window == Some(0));
    assert!(o.query_pos == QueryPos::Start(usize::MAX));
    assert!(matches!(o.mask, BoolMask::Allow(_)));
    let o = o
        .block(MatRef::from_array(&mask))
        .key_allow(&keys)
        .bias(MatRef::from_array(&b));
    assert!(matches!(o.mask, BoolMask::Block(_)) && matches!(o.key_mask, KeyMask::Allow(_)));
    assert!(matches!(o.bias, Bias::Shared(_)));
    let o = o.key_block(&keys).bias_per_head(MatRef::from_array(&b));
    assert!(matches!(o.key_mask, KeyMask::Block(_)) && matches!(o.bias, Bias::PerHead(_)));
    assert!(o.causal().causal);
    let o = o.score_bias(&hook).relative(&shaw);
    assert!(o.score_bias.is_some() && o.relative.is_some());
    let o = AttnOptions::<f32>::new().causal_top_left();
    assert!(o.causal && o.query_pos == QueryPos::Start(0));
    let d = AttnOptions::<f32>::default();
    assert!(d.scale.is_none() && !d.causal && d.window.is_none());
    assert!(d.query_pos == QueryPos::BottomRight);
}

// ------------------------------------------------------------------ attention::gqa

#[test]
fn audit_gqa_views_rejects_bad_input() {
    // 2 query heads over 1 kv head, width 2: q (1, 4), k/v (3, 2), out (1, 4).
    let q = mat(1, 4, |i| i as f32 / 4.0);
    let k = mat(3, 2, |i| i as f32 / 6.0);
    let v = mat(3, 2, |i| i as f32);
    let pos = KeyPositions::Range(0);
    let kv = [HeadsKv::packed(k.view(), v.view(), pos)];
    let o = AttnOptions::<f32>::new();
    let (mut out, mut s) = ([0.0f32; 4], [0.0f32; 6]);
    // `d`: heads, kv heads, output rows and columns, scratch length.
    let mut call = |q: &Matrix<f32>,
                    kv: &[HeadsKv<'_, f32>],
                    d: [usize; 5],
                    w: WeightsOut<'_, f32>,
                    o: &AttnOptions<'_, f32>| {
        let [h, kvh, rows, cols, sl] = d;
        let out = MatMut::new(&mut out[..rows * cols], rows, cols).unwrap();
        gqa_views(q.view(), kv, h, kvh, out, &mut s[..sl], w, o)
    };
    let g = [2, 1, 1, 4, 6];
    let q3 = mat(1, 3, |_| 0.0);
    let many = [kv[0]; MAX_RUNS + 1];
    // Packed keys/values narrower than kv_heads · d; a head-major store of the
    // wrong shape (1 kv head × 4 rows, 3 rows per head).
    let k1 = mat(3, 1, |_| 0.0);
    let narrow_k = [HeadsKv::packed(k1.view(), v.view(), pos)];
    let narrow_v = [HeadsKv::packed(k.view(), k1.view(), pos)];
    let store = mat(4, 2, |_| 0.0);
    let sv = store.view();
    let store3 = [HeadsKv::head_major(sv, sv, 3, 0, 2, pos)];
    type Case<'a> = (
        &'a str,
        &'a Matrix<f32>,
        &'a [HeadsKv<'a, f32>],
        [usize; 5],
        Check,
    );
    let cases: [Case<'_>; 11] = [
        ("zero heads", &q, &kv, [0, 1, 1, 4, 6], is_invalid),
        ("zero kv heads", &q, &kv, [2, 0, 1, 4, 6], is_invalid),
        ("3 heads over 2", &q, &kv, [3, 2, 1, 4, 6], is_invalid),
        ("q columns", &q3, &kv, g, is_invalid),
        ("out columns", &q, &kv, [2, 1, 1, 3, 6], is_invalid),
        ("out rows", &q, &kv, [2, 1, 2, 2, 6], is_shape),
        ("MAX_RUNS + 1 runs", &q, &many, g, is_invalid),
        ("packed keys", &q, &narrow_k, g, is_shape),
        ("packed values", &q, &narrow_v, g, is_shape),
        ("head-major store", &q, &store3, g, is_shape),
        ("scratch below NQ·NK", &q, &kv, [2, 1, 1, 4, 2], is_small),
    ];
    for (what, q, kv, d, check) in cases {
        let r = call(q, kv, d, WeightsOut::None, &o);
        assert!(check(&r), "{what}: {r:?}");
    }
    // A head-major run past rows_per_head.
    let past = [HeadsKv::head_major(sv, sv, 4, 3, 2, pos)];
    assert_err!(call(&q, &past, g, WeightsOut::None, &o) => OutOfRange { index: 5, len: 4, .. });
    // Weights of the wrong length.
    let mut w = vec![0.0f32; 5];
    assert_err!(call(&q, &kv, g, WeightsOut::PerHead(&mut w), &o) => LengthMismatch);
    assert_err!(call(&q, &kv, g, WeightsOut::Averaged(&mut w), &o) => LengthMismatch);
    // Options, checked per head.
    assert_err!(call(&q, &kv, g, WeightsOut::None, &o.window(0)) => InvalidParameter);
    let slopes = [1.0f32];
    let alibi = Alibi::new(&slopes, AlibiForm::Causal).unwrap();
    let r = call(&q, &kv, g, WeightsOut::None, &o.score_bias(&alibi));
    assert_err!(r => OutOfRange { index: 1, len: 1, .. });
    // Valid with the minimum scratch (NQ·NK = 3) and with the stacked one.
    assert!(call(&q, &kv, [2, 1, 1, 4, 3], WeightsOut::None, &o).is_ok());
    assert!(call(&q, &kv, g, WeightsOut::None, &o).is_ok());
    // The Scalar face rejects the same input.
    let mut out = [0.0f32; 4];
    let out = MatMut::new(&mut out, 1, 4).unwrap();
    let r = gqa_views_with::<Scalar, f32>(q.view(), &kv, 3, 2, out, &mut s, WeightsOut::None, &o);
    assert!(is_invalid(&r), "{r:?}");
}

#[test]
fn audit_gqa_const_and_dyn_reject_bad_input() {
    let q = [[[0.1f32, 0.2]; 2]; 1];
    let k = [[[0.3f32, 0.4]; 1]; 3];
    let v = [[[1.0f32, 2.0]; 1]; 3];
    let (mut out, mut s) = ([[[0.0f32; 2]; 2]; 1], [[0.0f32; 3]; 1]);
    let o = AttnOptions::<f32>::new();
    // Const face (both backends): shapes are compile-time; options and weights
    // are runtime.
    let mut run = |scalar: bool, w: WeightsOut<'_, f32>, o: &AttnOptions<'_, f32>| {
        if scalar {
            gqa_with::<Scalar, f32, 1, 3, 2, 1, 2, 2>(&q, &k, &v, &mut out, &mut s, w, o)
        } else {
            gqa(&q, &k, &v, &mut out, &mut s, w, o)
        }
    };
    let mask = [[true; 2]];
    let mask = o.allow(MatRef::from_array(&mask));
    for scalar in [false, true] {
        assert_err!(run(scalar, WeightsOut::None, &o.window(0)) => InvalidParameter);
        assert_err!(run(scalar, WeightsOut::None, &o.scale(f32::NAN)) => InvalidParameter);
        assert_err!(run(scalar, WeightsOut::PerHead(&mut [0.0; 5]), &o) => LengthMismatch);
        assert_err!(run(scalar, WeightsOut::None, &mask) => ShapeMismatch);
        run(scalar, WeightsOut::PerHead(&mut [0.0; 6]), &o).unwrap();
    }
    // Runtime face.
    let qm = mat(2, 8, |i| i as f32 / 16.0);
    let km = mat(5, 2, |i| i as f32 / 10.0);
    assert_err!(gqa_dyn(&qm, &km, &km, 4, 3, &o) => InvalidParameter);
    assert_err!(gqa_dyn(&qm, &km, &km, 0, 1, &o) => InvalidParameter);
    assert_err!(gqa_dyn(&qm, &km, &km, 4, 0, &o) => InvalidParameter);
    let (k4, v3) = (mat(5, 4, |_| 0.0), mat(5, 3, |_| 0.0)); // 3 columns over 2 kv heads
    assert_err!(gqa_dyn_with::<Scalar, f32>(&qm, &k4, &v3, 4, 2, &o) => InvalidParameter);
    let v6 = mat(6, 2, |_| 0.0); // 6 value rows for 5 keys
    assert_err!(gqa_dyn(&qm, &km, &v6, 4, 1, &o) => ShapeMismatch);
    let k3 = mat(5, 3, |_| 0.0); // key width 3 ≠ kv_heads · dk = 2
    assert_err!(gqa_dyn(&qm, &k3, &km, 4, 1, &o) => ShapeMismatch);
    assert_err!(gqa_dyn(&qm, &km, &km, 4, 1, &o.window(0)) => InvalidParameter);
    assert_eq!(gqa_dyn(&qm, &km, &km, 4, 1, &o).unwrap().shape(), (2, 8));
    // NaN in one query head stays in that head's columns.
    let mut qn = qm.clone();
    qn.as_mut_slice()[2] = f32::NAN; // row 0, head 1
    let out = gqa_dyn(&qn, &km, &km, 4, 1, &o).unwrap();
    let (row0, rest) = out.as_slice().split_at(8);
    assert!(row0[2..4].iter().all(|x| x.is_nan()));
    let mut others = row0[..2].iter().chain(&row0[4..]).chain(rest);
    assert!(others.all(|x| x.is_finite()));
}

#[test]
fn audit_gqa_heads_kv_and_scratch_len_at_edges() {
    let k = mat(2, 4, |i| i as f32); // 2 kv heads of width 2
    let run = HeadsKv::packed(k.view(), k.view(), KeyPositions::Range(7));
    assert_eq!((run.len(), run.is_empty()), (2, false));
    let seg = run.head(1, 2, 2, 2).unwrap();
    assert_eq!(
        (seg.keys.row(0), seg.positions),
        (Some(&[2.0f32, 3.0][..]), KeyPositions::Range(7))
    );
    // A kv head past kv_heads, or a width that does not match.
    assert!(is_range(&run.head(2, 2, 2, 2)));
    assert!(is_shape(&run.head(0, 2, 3, 2)));
    assert!(is_shape(&run.head(0, 2, 2, 3)));
    let store = mat(6, 2, |i| i as f32); // 2 kv heads × 3 rows
    let sv = store.view();
    let major = |first, len| HeadsKv::head_major(sv, sv, 3, first, len, KeyPositions::Range(0));
    let hm = major(1, 2);
    assert_eq!(hm.len(), 2);
    let keys = hm.head(1, 2, 2, 2).unwrap().keys;
    assert_eq!(keys.row(0), Some(&[8.0f32, 9.0][..]));
    assert!(is_range(&hm.head(2, 2, 2, 2)));
    assert!(is_shape(&hm.head(0, 3, 2, 2)));
    assert!(is_range(&major(2, 2).head(0, 2, 2, 2)));
    let empty = major(3, 0);
    assert!(empty.is_empty() && empty.head(1, 2, 2, 2).unwrap().is_empty());
    // Scratch length: saturating, kv_heads = 0 counts as groups of 1.
    assert_eq!(gqa_scratch_len(1, 10, 8, 2), 40);
    assert_eq!(gqa_scratch_len(2, 10, 8, 2), 20);
    assert_eq!(gqa_scratch_len(1, 10, 8, 0), 10);
    assert_eq!(gqa_scratch_len(0, 10, 8, 1), 0);
    assert_eq!(gqa_scratch_len(usize::MAX, 2, 1, 1), usize::MAX);
}

// ------------------------------------------------------------------ attention::kv_cache

#[test]
fn audit_kv_append_rejects_bad_rows_and_full_caches() {
    // Const cache: 2 kv heads of width 2, 3 slots, bounded.
    let mut c = KvCache::<f32, 2, 2, 3>::new();
    c.append(&[[1.0; 2]; 2], &[[2.0; 2]; 2]).unwrap();
    let before = snapshot(&c);
    let r = c.append_token(&[0.0; 3], &[0.0; 4]);
    assert_err!(r => ShapeMismatch { what: "append: keys", .. });
    let r = c.append_token(&[0.0; 4], &[0.0; 5]);
    assert_err!(r => ShapeMismatch { what: "append: values", .. });
    let (k2, v1) = (mat(2, 4, |_| 9.0), mat(1, 4, |_| 9.0));
    assert_err!(c.append_rows(k2.view(), v1.view()) => ShapeMismatch);
    assert_eq!(snapshot(&c), before);
    // Three more positions do not fit in two free slots: nothing appended.
    let three = [[[5.0; 2]; 2]; 3];
    assert_err!(c.append_chunk(&three, &three) => CacheFull { capacity: 3 });
    assert_err!(c.check_append(3) => CacheFull { capacity: 3 });
    assert_eq!(snapshot(&c), before);
    c.check_append(2).unwrap();
    let two = [[[3.0; 2]; 2]; 2];
    c.append_chunk(&two, &two).unwrap();
    let full = snapshot(&c);
    assert_err!(c.append(&[[0.0; 2]; 2], &[[0.0; 2]; 2]) => CacheFull { capacity: 3 });
    assert_err!(c.append_token(&[0.0; 4], &[0.0; 4]) => CacheFull);
    assert_err!(c.check_append(1) => CacheFull);
    c.check_append(0).unwrap();
    assert_eq!(snapshot(&c), full);
    // Zero rows always fit.
    let none = mat(0, 4, |_| 0.0);
    assert_eq!(c.append_rows(none.view(), none.view()).unwrap(), 3);
    assert_eq!(snapshot(&c), full);

    // Runtime and view caches: the same rules.
    let mut d = KvCacheDyn::<f32>::new(1, 2, 2, CachePolicy::Bounded).unwrap();
    d.append_token(&[1.0, 1.0], &[1.0, 1.0]).unwrap();
    let before = snapshot(&d);
    assert_err!(d.append_token(&[1.0], &[1.0, 1.0]) => ShapeMismatch);
    let rows = mat(2, 2, |_| 0.0);
    assert_err!(d.append_rows(rows.view(), rows.view()) => CacheFull { capacity: 2 });
    assert_eq!(snapshot(&d), before);
    let (mut ks, mut vs) = ([0.0f32; 4], [0.0f32; 4]);
    let mut view = KvCacheView::new(&mut ks, &mut vs, 1, 2, CachePolicy::Bounded).unwrap();
    view.append_token(&[1.0, 2.0], &[3.0, 4.0]).unwrap();
    view.append_token(&[1.0, 2.0], &[3.0, 4.0]).unwrap();
    let before = snapshot(&view);
    assert_err!(view.append_token(&[1.0, 2.0], &[3.0, 4.0]) => CacheFull { capacity: 2 });
    assert_err!(view.append_token(&[1.0, 2.0, 3.0], &[3.0, 4.0]) => ShapeMismatch);
    assert_eq!(snapshot(&view), before);

    // A ring buffer is never full; a chunk longer than it keeps its last CAP rows.
    let mut ring = KvCache::<f32, 1, 1, 2>::new_ring();
    ring.check_append(usize::MAX / 2).unwrap();
    let chunk = [[[1.0]], [[2.0]], [[3.0]]];
    let first = ring.append_chunk(&chunk, &chunk).unwrap();
    assert_eq!(
        (first, ring.oldest_position(), ring.next_position()),
        (0, 1, 3)
    );
    assert_eq!(
        (ring.key(0, 1), ring.key(0, 2)),
        (Some(&[2.0f32][..]), Some(&[3.0f32][..]))
    );
    assert_eq!(ring.key(0, 0), None);
    assert_err!(ring.append_token(&[1.0, 2.0], &[1.0]) => ShapeMismatch);
}

#[test]
fn audit_kv_truncate_rejects_positions_not_held() {
    let mut c = KvCache::<f32, 1, 1, 3>::new_ring();
    for p in 0..5 {
        c.append(&[[p as f32]], &[[p as f32]]).unwrap();
    }
    let before = snapshot(&c); // holds 2..5
    for pos in [0, 1, 6, usize::MAX] {
        let r = c.truncate(pos);
        assert!(
            matches!(r, Err(Error::PositionNotHeld { position, oldest: 2, next: 5 }) if position == pos),
            "{r:?}"
        );
        assert_err!(KvStore::truncate(&mut c, pos) => PositionNotHeld, "{pos}");
    }
    assert_eq!(snapshot(&c), before);
    // The ends of the held range are fine: next (a no-op) and oldest (empties).
    c.truncate(5).unwrap();
    assert_eq!(snapshot(&c), before);
    c.truncate(2).unwrap();
    assert!(c.is_empty() && c.next_position() == 2 && c.oldest_position() == 2);
    assert_err!(c.truncate(3) => PositionNotHeld { position: 3, oldest: 2, next: 2 });
    c.reset();
    assert_eq!((c.len(), c.next_position(), c.oldest_position()), (0, 0, 0));
    // The same rule on a runtime cache and on a bare ledger.
    let mut d = KvCacheDyn::<f32>::new(1, 1, 4, CachePolicy::Bounded).unwrap();
    d.append_token(&[1.0], &[1.0]).unwrap();
    assert_err!(d.truncate(2) => PositionNotHeld { position: 2, oldest: 0, next: 1 });
    assert_eq!(d.len(), 1);
    let (mut ks, mut vs) = ([0.0f32; 2], [0.0f32; 2]);
    let mut view = KvCacheView::new(&mut ks, &mut vs, 1, 1, CachePolicy::Ring).unwrap();
    for p in 0..3 {
        view.append_token(&[p as f32], &[p as f32]).unwrap();
    }
    let mut ledger = view.ledger();
    assert_err!(ledger.truncate(0) => PositionNotHeld { position: 0, oldest: 1, next: 3 });
    assert_err!(ledger.truncate(4) => PositionNotHeld);
    assert_eq!((ledger.oldest(), ledger.next()), (1, 3));
    ledger.truncate(2).unwrap();
    assert_eq!((ledger.len(), ledger.is_empty()), (1, false));
}

#[test]
fn audit_kv_copy_from_rejects_other_shapes() {
    let mut a = KvCache::<f32, 1, 2, 3>::new();
    a.append(&[[1.0, 2.0]], &[[3.0, 4.0]]).unwrap();
    let ring = KvCache::<f32, 1, 2, 3>::new_ring();
    let before = snapshot(&a);
    assert_err!(a.copy_from(&ring) => InvalidParameter { what: "KV cache copy", .. });
    assert_eq!(snapshot(&a), before);
    let new = |h, d, cap, policy| KvCacheDyn::<f32>::new(h, d, cap, policy).unwrap();
    let mut d = new(1, 2, 3, CachePolicy::Bounded);
    d.append_token(&[5.0, 6.0], &[7.0, 8.0]).unwrap();
    let before = snapshot(&d);
    for other in [
        new(2, 2, 3, CachePolicy::Bounded),
        new(1, 1, 3, CachePolicy::Bounded),
        new(1, 2, 4, CachePolicy::Bounded),
        new(1, 2, 3, CachePolicy::Ring),
    ] {
        assert!(is_invalid(&d.copy_from(&other)));
        assert_eq!(snapshot(&d), before);
    }
    // A same-shaped copy, including of an empty cache.
    let mut e = new(1, 2, 3, CachePolicy::Bounded);
    e.copy_from(&d).unwrap();
    assert_eq!(snapshot(&e), before);
    e.copy_from(&new(1, 2, 3, CachePolicy::Bounded)).unwrap();
    assert!(e.is_empty());
}

#[test]
fn audit_kv_queries_at_edges() {
    let mut c = KvCache::<f32, 2, 1, 3>::new();
    // Empty cache.
    assert_eq!((c.len(), c.is_empty(), c.capacity()), (0, true, 3));
    assert_eq!(
        (c.policy(), c.kv_heads(), c.head_dim()),
        (CachePolicy::Bounded, 2, 1)
    );
    assert_eq!((c.next_position(), c.oldest_position()), (0, 0));
    assert_eq!((c.slot_position(0), c.position_slot(0)), (None, None));
    assert_eq!((c.key(0, 0), c.value(0, 0)), (None, None));
    assert_eq!(c.held().1, 0);
    c.append(&[[1.0], [2.0]], &[[3.0], [4.0]]).unwrap();
    // A held position; a head, slot or position past the end.
    assert_eq!((c.slot_position(0), c.position_slot(0)), (Some(0), Some(0)));
    assert_eq!(
        (c.key(1, 0), c.value(1, 0)),
        (Some(&[2.0f32][..]), Some(&[4.0f32][..]))
    );
    for (h, s) in [(2, 0), (0, 1), (0, usize::MAX)] {
        assert_eq!(
            (c.key(h, s), c.value(h, s)),
            (None, None),
            "head {h}, slot {s}"
        );
    }
    for s in [1, 3, usize::MAX] {
        assert_eq!(c.slot_position(s), None, "slot {s}");
    }
    assert_eq!(c.position_slot(1), None);
    assert_err!(c.head_keys(2) => OutOfRange { index: 2, len: 2, .. });
    assert_err!(c.head_values(usize::MAX) => OutOfRange);
    assert_eq!(c.head_keys(1).unwrap().shape(), (3, 1));
    assert_eq!(c.head_values(0).unwrap().row(0), Some(&[3.0f32][..]));
    assert_eq!(c.keys_array(1).map(|a| a[0]), Some([2.0]));
    assert_eq!(c.values_array(0).map(|a| a[0]), Some([3.0]));
    assert!(c.keys_array(2).is_none() && c.values_array(2).is_none());
    assert_eq!(c.held().1, 1);
    type C = KvCache<f32, 2, 1, 3>;
    assert_eq!(C::BYTES, core::mem::size_of::<C>());
    // Ring: slots report their absolute positions after wrapping.
    let mut r = KvCache::<f32, 1, 1, 2>::with_policy(CachePolicy::Ring);
    for p in 0..3 {
        r.append(&[[p as f32]], &[[p as f32]]).unwrap();
    }
    let slots = [0, 1, 2].map(|s| r.slot_position(s));
    assert_eq!(slots, [Some(2), Some(1), None]);
    assert_eq!((r.position_slot(2), r.position_slot(0)), (Some(0), None));
    let (runs, n) = r.held();
    assert_eq!((n, runs[0].len(), runs[1].len()), (2, 1, 1));
    // Runtime cache.
    let d = KvCacheDyn::<f32>::new(1, 2, 4, CachePolicy::Ring).unwrap();
    assert_eq!((d.bytes(), d.capacity()), (2 * 2 * 4 * 4, 4));
    assert_eq!(d.policy(), CachePolicy::Ring);
    assert!(is_range(&d.head_keys(1)));
    // Bare ledgers (the bookkeeping behind every cache).
    let l = CacheLedger::empty(CachePolicy::Ring, 4);
    assert_eq!((l.policy(), l.capacity()), (CachePolicy::Ring, 4));
    assert_eq!(
        (l.oldest(), l.next(), l.len(), l.is_empty()),
        (0, 0, 0, true)
    );
    assert_eq!(l.runs().1, 0);
    let l = CacheLedger::empty(CachePolicy::Bounded, 0);
    assert_eq!((l.capacity(), l.runs().1), (0, 0));
    let (mut ks, mut vs) = ([0.0f32; 4], [0.0f32; 4]);
    let mut v = KvCacheView::new(&mut ks, &mut vs, 1, 1, CachePolicy::Ring).unwrap();
    for p in 0..6 {
        v.append_token(&[p as f32], &[p as f32]).unwrap();
    }
    let (runs, n) = v.ledger().runs();
    let runs: Vec<_> = runs[..n]
        .iter()
        .map(|r| (r.slot, r.len, r.first_position))
        .collect();
    assert_eq!(runs, [(2, 2, 2), (0, 2, 4)]);
}

#[test]
fn audit_kv_constructors_reject_bad_sizes() {
    for (h, d, cap) in [
        (0, 2, 2),
        (1, 0, 2),
        (1, 2, 0),
        (usize::MAX, 2, 2),
        (2, usize::MAX, 2),
    ] {
        let r = KvCacheDyn::<f32>::new(h, d, cap, CachePolicy::Bounded);
        assert!(is_invalid(&r), "{h} {d} {cap}: {r:?}");
    }
    // No overflow, but too large to allocate.
    assert_err!(KvCacheDyn::<f32>::new(1, 1 << 31, 1 << 31, CachePolicy::Ring) => InvalidParameter);
    // Views: key and value storage lengths, heads, head width, policy.
    use CachePolicy::{Bounded, Ring};
    for (kl, vl, h, d, policy) in [
        (8, 8, 0, 2, Bounded),
        (8, 8, 2, 0, Bounded),
        (8, 8, usize::MAX, 2, Bounded),
        (8, 8, 3, 1, Bounded), // 8 % 3
        (6, 8, 1, 2, Bounded), // 6 ≠ 8
        (3, 3, 2, 2, Ring),    // < 1 position
        (0, 0, 1, 1, Ring),
    ] {
        let (mut k, mut v) = (vec![0.0f32; kl], vec![0.0f32; vl]);
        let r = KvCacheView::new(&mut k, &mut v, h, d, policy);
        assert!(is_invalid(&r), "{kl} {vl} {h} {d} {policy:?}: {r:?}");
    }
    // resume: the ledger's capacity must match the storage.
    let (mut k, mut v) = ([0.0f32; 8], [0.0f32; 8]);
    let ledger = {
        let mut c = KvCacheView::new(&mut k, &mut v, 2, 2, Bounded).unwrap();
        c.append_token(&[1.0; 4], &[1.0; 4]).unwrap();
        c.ledger()
    };
    assert_eq!(ledger.capacity(), 2);
    let r = KvCacheView::resume(&mut k, &mut v, 1, 2, ledger); // capacity 4
    assert_err!(r => ShapeMismatch { expected: (2, 1), found: (4, 1), .. });
    assert_err!(KvCacheView::resume(&mut k, &mut v, 0, 2, ledger) => InvalidParameter);
    let c = KvCacheView::resume(&mut k, &mut v, 2, 2, ledger).unwrap();
    assert_eq!((c.len(), c.next_position()), (1, 1));
    // The const constructors have no runtime input.
    type C = KvCache<f32, 1, 1, 1>;
    assert!(C::new().is_empty());
    assert_eq!(C::new_ring().policy(), Ring);
    assert_eq!(C::with_policy(Bounded).capacity(), 1);
}

#[test]
fn audit_reorder_beams_rejects_bad_parents() {
    let mut beams: Vec<KvCacheDyn<f32>> = (0..3)
        .map(|b| {
            let mut c = KvCacheDyn::new(1, 1, 4, CachePolicy::Bounded).unwrap();
            c.append_token(&[b as f32], &[b as f32]).unwrap();
            c
        })
        .collect();
    let before: Vec<_> = beams.iter().map(snapshot).collect();
    let now = |b: &[KvCacheDyn<f32>]| b.iter().map(snapshot).collect::<Vec<_>>();
    assert_err!(reorder_beams(&mut beams, &[0, 1]) => LengthMismatch { expected: 3, found: 2, .. });
    assert_err!(reorder_beams(&mut beams, &[0, 3, 1]) => OutOfRange { index: 3, len: 3, .. });
    assert_err!(reorder_beams(&mut beams, &[usize::MAX, 0, 0]) => OutOfRange);
    assert_eq!(now(&beams), before);
    beams.push(KvCacheDyn::new(1, 1, 5, CachePolicy::Bounded).unwrap());
    let r = reorder_beams(&mut beams, &[1, 0, 2, 3]);
    assert_err!(r => InvalidParameter { what: "reorder_beams", .. });
    beams.pop();
    assert_eq!(now(&beams), before);
    // Valid: a permutation with repeats; an empty beam set.
    reorder_beams(&mut beams, &[2, 2, 0]).unwrap();
    let firsts: Vec<_> = beams.iter().map(|c| c.key(0, 0).unwrap()[0]).collect();
    assert_eq!(firsts, [2.0, 2.0, 0.0]);
    let mut none: [KvCache<f32, 1, 1, 1>; 0] = [];
    reorder_beams(&mut none, &[]).unwrap();
    assert!(is_len(&reorder_beams(&mut none, &[0])));
}

/// `attend_cache_views` and its Scalar face on `cache`, which must agree:
/// queries `q` from position `start`, `heads` query heads, the keys and values
/// of `pending` not yet appended (if any), an output of `out` = (rows, columns)
/// and a scratch of `scratch` elements.
fn attend_cache_faces<C: KvStore<f32>>(
    q: &Matrix<f32>,
    [start, heads]: [usize; 2],
    cache: &C,
    pending: Option<&Matrix<f32>>,
    (out, scratch): ((usize, usize), usize),
    o: &AttnOptions<'_, f32>,
) -> constml::Result<()> {
    type Face<S> = fn(
        MatRef<'_, f32>,
        usize,
        usize,
        &S,
        Option<(MatRef<'_, f32>, MatRef<'_, f32>)>,
        MatMut<'_, f32>,
        &mut [f32],
        WeightsOut<'_, f32>,
        &AttnOptions<'_, f32>,
    ) -> constml::Result<()>;
    let faces: [Face<C>; 2] = [
        attend_cache_views,
        attend_cache_views_with::<Scalar, f32, C>,
    ];
    let pending = pending.map(|p| (p.view(), p.view()));
    let results = faces.map(|face| {
        let mut buf = vec![0.0f32; out.0 * out.1];
        let out = MatMut::new(&mut buf, out.0, out.1).unwrap();
        let mut s = vec![0.0f32; scratch];
        face(
            q.view(),
            start,
            heads,
            cache,
            pending,
            out,
            &mut s,
            WeightsOut::None,
            o,
        )
    });
    assert_eq!(results[0], results[1], "Simd and Scalar faces");
    results[0]
}

#[test]
fn audit_attend_cache_views_rejects_bad_input() {
    // 2 query heads over 1 kv head of width 2; bounded cache of 4 holding 2.
    let mut c = KvCacheDyn::<f32>::new(1, 2, 4, CachePolicy::Bounded).unwrap();
    c.append_token(&[0.1, 0.2], &[1.0, 2.0]).unwrap();
    c.append_token(&[0.3, 0.4], &[3.0, 4.0]).unwrap();
    let before = snapshot(&c);
    let q = mat(1, 4, |i| i as f32 / 4.0);
    let o = AttnOptions::<f32>::new();
    // Query start, heads; pending keys = values; output rows, scratch length.
    let run = |q: &Matrix<f32>,
               start_heads: [usize; 2],
               pending: Option<&Matrix<f32>>,
               [rows, scratch]: [usize; 2],
               o: &AttnOptions<'_, f32>| {
        attend_cache_faces(q, start_heads, &c, pending, ((rows, 4), scratch), o)
    };
    assert_err!(run(&q, [1, 0], None, [1, 8], &o) => InvalidParameter);
    // Query columns not a multiple of the heads.
    assert_err!(run(&mat(1, 3, |_| 0.0), [1, 2], None, [1, 8], &o) => InvalidParameter);
    // A query newer than the newest key (position 2 with 0..2 held, nothing pending).
    let r = run(&q, [2, 2], None, [1, 8], &o);
    assert_err!(r => InvalidParameter { what: "attend_cache_views: query_start", .. });
    assert_err!(run(&q, [usize::MAX, 2], None, [1, 8], &o) => InvalidParameter);
    // Shapes: output rows, pending widths; scratch below N·(held + pending).
    assert_err!(run(&q, [1, 2], None, [2, 8], &o) => ShapeMismatch);
    let k3 = mat(1, 3, |_| 0.0);
    assert_err!(run(&q, [2, 2], Some(&k3), [1, 8], &o) => ShapeMismatch);
    assert_err!(run(&q, [1, 2], None, [1, 1], &o) => BufferTooSmall);
    // Options.
    assert_err!(run(&q, [1, 2], None, [1, 8], &o.window(0)) => InvalidParameter);
    assert_err!(run(&q, [1, 2], None, [1, 8], &o.scale(f32::INFINITY)) => InvalidParameter);
    let mask = [[true; 3]];
    let mask = o.allow(MatRef::from_array(&mask));
    assert_err!(run(&q, [1, 2], None, [1, 8], &mask) => ShapeMismatch);
    // Valid: last held position, and a pending token at the next position.
    assert!(run(&q, [1, 2], None, [1, 8], &o).is_ok());
    let k1 = mat(1, 2, |_| 0.5);
    assert!(run(&q, [2, 2], Some(&k1), [1, 8], &o).is_ok());
    assert_eq!(snapshot(&c), before);
    // Query heads that are not a multiple of the cache's kv heads (3 over 2).
    let c2 = KvCacheDyn::<f32>::new(2, 2, 4, CachePolicy::Bounded).unwrap();
    let (q6, k4) = (mat(1, 6, |_| 0.0), mat(1, 4, |_| 0.0));
    let r = attend_cache_faces(&q6, [0, 3], &c2, Some(&k4), ((1, 6), 8), &o);
    assert_err!(r => InvalidParameter { what: "attention: kv_heads", .. });
    // Ring: after appending a 3-token chunk into 2 slots, its first query's
    // window reaches a position that is gone.
    let mut ring = KvCache::<f32, 1, 2, 2>::new_ring();
    ring.append_chunk(&[[[1.0; 2]]; 3], &[[[1.0; 2]]; 3])
        .unwrap();
    let q3 = mat(3, 2, |_| 0.0);
    let r = attend_cache_faces(&q3, [0, 1], &ring, None, ((3, 2), 9), &o);
    assert_err!(r => PositionNotHeld { position: 0, oldest: 1, next: 3 });
    // Scratch length: saturating.
    assert_eq!(attend_cache_scratch_len(2, 4), 12);
    assert_eq!(attend_cache_scratch_len(0, 4), 0);
    assert_eq!(attend_cache_scratch_len(usize::MAX, 1), usize::MAX);
}

// ------------------------------------------------------------------ attention::mha

/// Owned buffers behind an `MhaBuffers` with chosen shapes.
struct Bufs {
    shapes: [(usize, usize); 4],
    data: [Vec<f32>; 4],
    scores: Vec<f32>,
}

impl Bufs {
    fn new(shapes: [(usize, usize); 4], scores: usize) -> Self {
        let data = shapes.map(|(r, c)| vec![0.0f32; r * c]);
        Self {
            shapes,
            data,
            scores: vec![0.0; scores],
        }
    }
    fn views(&mut self) -> MhaBuffers<'_, f32> {
        let [q, k, v, ctx] = &mut self.data;
        let [sq, sk, sv, sc] = self.shapes;
        MhaBuffers {
            q: MatMut::new(q, sq.0, sq.1).unwrap(),
            k: MatMut::new(k, sk.0, sk.1).unwrap(),
            v: MatMut::new(v, sv.0, sv.1).unwrap(),
            ctx: MatMut::new(ctx, sc.0, sc.1).unwrap(),
            scores: &mut self.scores,
        }
    }
}

/// A one-token step's fixtures: the token (1, 4), a bounded runtime cache of
/// one kv head of width 2 with 2 slots holding one token, and MHA buffer shapes
/// that fit (q and ctx (1, 4), k and v (1, 2)).
fn one_token_step() -> (Matrix<f32>, KvCacheDyn<f32>, [(usize, usize); 4]) {
    let mut cache = KvCacheDyn::<f32>::new(1, 2, 2, CachePolicy::Bounded).unwrap();
    cache.append_token(&[0.5, 0.5], &[1.0, 1.0]).unwrap();
    let x = mat(1, 4, |i| i as f32 / 4.0);
    (x, cache, [(1, 4), (1, 2), (1, 2), (1, 4)])
}

/// Runs `f` (a layer on one token) with MHA buffers of `shapes`, `scores`
/// score elements and an output of (1, `out_cols`).
fn one_token(
    shapes: [(usize, usize); 4],
    [scores, out_cols]: [usize; 2],
    f: impl FnOnce(MhaBuffers<'_, f32>, MatMut<'_, f32>) -> constml::Result<()>,
) -> constml::Result<()> {
    let mut b = Bufs::new(shapes, scores);
    let mut out = vec![0.0f32; out_cols];
    f(b.views(), MatMut::new(&mut out, 1, out_cols).unwrap())
}

/// Owned weights behind an `MhaParams`.
struct MhaW {
    heads: usize,
    kv_heads: usize,
    wq: Matrix<f32>,
    wk: Matrix<f32>,
    wv: Matrix<f32>,
    wo: Matrix<f32>,
}

impl MhaW {
    /// A 2-head layer: q/k input 3, v input 3, head widths 2, output 4.
    fn new() -> Self {
        Self {
            heads: 2,
            kv_heads: 2,
            wq: mat(4, 3, |i| (i as f32 - 5.0) / 10.0),
            wk: mat(4, 3, |i| (i as f32) / 20.0),
            wv: mat(4, 3, |i| (i % 5) as f32 / 4.0),
            wo: mat(4, 4, |i| if i % 5 == 0 { 1.0 } else { 0.1 }),
        }
    }
    /// A decoder over `KvCacheDyn`: d_model 4, 2 query heads over 1 kv head of
    /// width 2 (k and v share their weights).
    fn decoder() -> Self {
        let wkv = mat(2, 4, |i| i as f32 / 8.0);
        Self {
            heads: 2,
            kv_heads: 1,
            wq: mat(4, 4, |i| (i % 5) as f32 / 10.0),
            wk: wkv.clone(),
            wv: wkv,
            wo: mat(4, 4, |i| (i % 2) as f32),
        }
    }
    fn params(&self) -> MhaParams<'_, f32> {
        MhaParams {
            heads: self.heads,
            kv_heads: self.kv_heads,
            w_q: self.wq.view(),
            b_q: None,
            w_k: self.wk.view(),
            b_k: None,
            w_v: self.wv.view(),
            b_v: None,
            w_o: self.wo.view(),
            b_o: None,
        }
    }
}

#[test]
fn audit_mha_views_rejects_bad_input() {
    const NONE: WeightsOut<'static, f32> = WeightsOut::None;
    let w = MhaW::new();
    let p = w.params();
    let (query, key) = (mat(2, 3, |i| i as f32 / 6.0), mat(3, 3, |i| i as f32 / 9.0));
    let o = AttnOptions::<f32>::new();
    let good = [(2, 4), (3, 4), (3, 4), (2, 4)];
    let mut out = [0.0f32; 8];
    // `sizes`: score length, output columns.
    let mut run = |p: &MhaParams<'_, f32>,
                   [query, value]: [&Matrix<f32>; 2],
                   shapes: [(usize, usize); 4],
                   [scores, out_cols]: [usize; 2],
                   wo: WeightsOut<'_, f32>,
                   o: &AttnOptions<'_, f32>| {
        let mut b = Bufs::new(shapes, scores);
        let out = MatMut::new(&mut out[..2 * out_cols], 2, out_cols).unwrap();
        let (q, k, v) = (query.view(), key.view(), value.view());
        mha_views(p, q, k, v, out, b.views(), wo, o)
    };
    let (qk, g) = ([&query, &key], [6, 4]);
    // Key and value row counts differ.
    let r = run(&p, [&query, &mat(2, 3, |_| 0.0)], good, g, NONE, &o);
    assert_err!(r => ShapeMismatch { what: "multi-head attention: value", .. });
    // Query width ≠ w_q's input width; a bias of the wrong length; a q buffer
    // of the wrong shape.
    let q2 = mat(2, 2, |_| 0.0);
    assert_err!(run(&p, [&q2, &key], good, g, NONE, &o) => ShapeMismatch);
    let b3 = [0.0f32; 3];
    assert_err!(run(&MhaParams { b_q: Some(&b3), ..p }, qk, good, g, NONE, &o) => LengthMismatch);
    assert_err!(run(&MhaParams { b_o: Some(&b3), ..p }, qk, good, g, NONE, &o) => LengthMismatch);
    let bad_q = [(2, 3), (3, 4), (3, 4), (2, 4)];
    assert_err!(run(&p, qk, bad_q, g, NONE, &o) => ShapeMismatch);
    // Head counts; output width ≠ w_o's rows; w_o's input ≠ ctx width.
    let mut h3 = p;
    (h3.heads, h3.kv_heads) = (3, 2);
    assert_err!(run(&h3, qk, good, g, NONE, &o) => InvalidParameter);
    assert_err!(run(&MhaParams { heads: 0, ..p }, qk, good, g, NONE, &o) => InvalidParameter);
    assert_err!(run(&p, qk, good, [6, 3], NONE, &o) => ShapeMismatch);
    let wo3 = mat(4, 3, |_| 0.0);
    assert_err!(run(&MhaParams { w_o: wo3.view(), ..p }, qk, good, g, NONE, &o) => ShapeMismatch);
    // Scores below NQ·NK; weights of the wrong length; options.
    assert_err!(run(&p, qk, good, [5, 4], NONE, &o) => BufferTooSmall);
    let mut wbad = [0.0f32; 11];
    assert_err!(run(&p, qk, good, g, WeightsOut::PerHead(&mut wbad), &o) => LengthMismatch);
    assert_err!(run(&p, qk, good, g, WeightsOut::Averaged(&mut wbad), &o) => LengthMismatch);
    assert_err!(run(&p, qk, good, g, NONE, &o.window(0)) => InvalidParameter);
    assert_err!(run(&p, qk, good, g, NONE, &o.key_block(&[true])) => LengthMismatch);
    // Valid; the Scalar face rejects the same value rows.
    assert!(run(&p, qk, good, g, NONE, &o).is_ok());
    let mut b = Bufs::new(good, 6);
    let mut out = [0.0f32; 8];
    let out = MatMut::new(&mut out, 2, 4).unwrap();
    let (q, k, v) = (query.view(), key.view(), mat(4, 3, |_| 0.0));
    let r = mha_views_with::<Scalar, f32>(&p, q, k, v.view(), out, b.views(), NONE, &o);
    assert!(is_shape(&r), "{r:?}");
}

#[test]
fn audit_mha_const_layers_reject_bad_options() {
    // The doc example's layer: 2 heads, inputs 3 (q/k) and 2 (v), head widths 2 and 1, output 4.
    let w_q = [[[0.1f32; 3]; 2]; 2];
    let w_v = [[[0.5f32; 2]; 1]; 2];
    let w_o = [[[1.0f32; 1]; 2]; 4];
    let weights = MhaWeights {
        w_q: &w_q,
        b_q: None,
        w_k: &w_q,
        b_k: None,
        w_v: &w_v,
        b_v: None,
        w_o: &w_o,
        b_o: None,
    };
    let mha = MultiHeadAttention::<f32, 2, 3, 2, 2, 1, 4>::new(weights);
    assert_eq!(mha.weights().w_q, &w_q);
    let p = mha.params().unwrap();
    assert_eq!((p.heads, p.kv_heads, p.w_o.shape()), (2, 2, (4, 2)));
    assert_eq!(weights.params().unwrap().w_q.shape(), (4, 3));
    let (q, k, v) = ([[1.0f32; 3]; 2], [[1.0f32; 3]; 5], [[2.0f32; 2]; 5]);
    let mut out = [[0.0f32; 4]; 2];
    let mut scratch = MhaScratch::new();
    let o = AttnOptions::<f32>::new();
    let mask = [[false; 4]; 2];
    let mask = o.block(MatRef::from_array(&mask));
    let mut fwd = |w: WeightsOut<'_, f32>, o: &AttnOptions<'_, f32>| {
        mha.forward(&q, &k, &v, &mut out, &mut scratch, w, o)
    };
    assert_err!(fwd(WeightsOut::None, &o.window(0)) => InvalidParameter);
    assert_err!(fwd(WeightsOut::None, &o.scale(f32::NAN)) => InvalidParameter);
    assert_err!(fwd(WeightsOut::None, &mask) => ShapeMismatch);
    assert_err!(fwd(WeightsOut::PerHead(&mut [0.0; 19]), &o) => LengthMismatch);
    fwd(WeightsOut::PerHead(&mut [0.0; 20]), &o).unwrap();
    assert_eq!(scratch.last_head_weights(), &[[0.2f32; 5]; 2]);
    let fresh = MhaScratch::<f32, 1, 1, 1, 1, 1>::new();
    assert_eq!(fresh.last_head_weights(), &[[0.0]]);
    // SelfAttention: the same runtime rules.
    let wx = [[[0.1f32; 3]; 2]; 2];
    let wo = [[[1.0f32; 2]; 2]; 3];
    let sa = SelfAttention::<f32, 2, 3, 2, 2, 3>::new(MhaWeights {
        w_q: &wx,
        b_q: None,
        w_k: &wx,
        b_k: None,
        w_v: &wx,
        b_v: None,
        w_o: &wo,
        b_o: None,
    });
    let x = [[0.5f32; 3]; 2];
    let (mut out, mut s) = ([[0.0f32; 3]; 2], MhaScratch::new());
    let mut fwd =
        |w: WeightsOut<'_, f32>, o: &AttnOptions<'_, f32>| sa.forward(&x, &mut out, &mut s, w, o);
    assert_err!(fwd(WeightsOut::None, &o.window(0)) => InvalidParameter);
    assert_err!(fwd(WeightsOut::Averaged(&mut [0.0; 3]), &o) => LengthMismatch);
    fwd(WeightsOut::None, &o.causal()).unwrap();
    // nn.MultiheadAttention, packed: E = 4 = 2 heads × 2.
    let inw = [[[0.1f32; 4]; 4]; 3];
    let outw = [[0.2f32; 4]; 4];
    let inb = [[0.0f32; 4]; 3];
    let pm = PackedMultiheadAttention::<f32, 4, 2, 2>::new(PackedMhaWeights {
        in_proj_weight: &inw,
        in_proj_bias: Some(&inb),
        out_proj_weight: &outw,
        out_proj_bias: None,
    });
    let pp = pm.params();
    assert_eq!((pp.heads, pp.w_q.shape()), (2, (4, 4)));
    assert_eq!(pp.b_k.map(|b| b.len()), Some(4));
    let x = [[1.0f32; 4]; 2];
    let (mut out, mut s) = ([[0.0f32; 4]; 2], MhaScratch::new());
    let mut fwd = |pad: Option<&[bool; 2]>, w: WeightsOut<'_, f32>, o: &AttnOptions<'_, f32>| {
        pm.forward(&x, &x, &x, pad, &mut out, &mut s, w, o)
    };
    assert_err!(fwd(None, WeightsOut::None, &o.window(0)) => InvalidParameter);
    assert_err!(fwd(None, WeightsOut::Averaged(&mut [0.0; 3]), &o) => LengthMismatch);
    // Every key padded out: rows fully masked, zero output (no bias), not NaN.
    fwd(Some(&[true, true]), WeightsOut::None, &o).unwrap();
    assert_eq!(out, [[0.0; 4]; 2]);
}

#[test]
fn audit_mha_dyn_rejects_bad_shapes() {
    let e = 4;
    let inw = mat(3 * e, e, |i| (i % 7) as f32 / 7.0);
    let outw = mat(e, e, |i| (i % 3) as f32);
    let bias = |n| Some(vec![0.0; n]);
    let layer = |heads, inw: &Matrix<f32>, b_in| {
        MultiHeadAttentionDyn::<f32>::from_packed(heads, inw.clone(), b_in, outw.clone(), None)
    };
    let weights = |heads, inw: &Matrix<f32>, b_in| {
        MhaWeightsDyn::<f32>::from_packed(heads, inw.clone(), b_in, outw.clone(), None)
    };
    let r = layer(2, &mat(3 * e + 1, e, |_| 0.0), None);
    assert_err!(r => ShapeMismatch { what: "nn.MultiheadAttention: in_proj_weight", .. });
    assert_err!(layer(3, &inw, None) => InvalidParameter);
    assert_err!(layer(0, &inw, None) => InvalidParameter);
    assert_err!(layer(2, &inw, bias(3 * e - 1)) => LengthMismatch);
    assert_err!(weights(2, &inw, bias(e)) => LengthMismatch);
    assert_err!(weights(2, &mat(e, e, |_| 0.0), None) => ShapeMismatch);
    let wd = weights(2, &inw, bias(3 * e)).unwrap();
    assert_eq!((wd.heads, wd.kv_heads), (2, 2));
    assert_eq!(wd.b_v.as_ref().map(Vec::len), Some(e));
    assert_eq!(wd.params().w_k.shape(), (e, e));
    let mha = MultiHeadAttentionDyn::<f32>::new(wd);
    let x = mat(3, e, |i| i as f32 / 12.0);
    let (x5, v2) = (mat(3, 5, |_| 0.0), mat(2, e, |_| 0.0));
    let o = AttnOptions::<f32>::new();
    assert_err!(mha.forward(&x, &x5, &x, &o) => ShapeMismatch);
    assert_err!(mha.forward(&x, &x, &v2, &o) => ShapeMismatch);
    assert_err!(mha.forward(&x5, &x, &x, &o) => ShapeMismatch);
    assert_err!(mha.forward_self(&x5, &o) => ShapeMismatch);
    assert_err!(mha.forward_self(&x, &o.window(0)) => InvalidParameter);
    for kind in [
        WeightsKind::PerHead,
        WeightsKind::Averaged,
        WeightsKind::Both,
    ] {
        assert_err!(mha.forward_with_weights(&x, &x, &v2, kind, &o) => ShapeMismatch);
        let nan = o.scale(f32::NAN);
        assert_err!(mha.forward_with_weights(&x, &x, &x, kind, &nan) => InvalidParameter);
    }
    // Head counts of hand-built weights; an output bias of the wrong length.
    let self_attn = |w| MultiHeadAttentionDyn::<f32>::new(w).forward_self(&x, &o);
    let mut bad = mha.weights.clone();
    bad.heads = 0;
    assert_err!(self_attn(bad.clone()) => InvalidParameter);
    (bad.heads, bad.kv_heads) = (3, 2);
    assert_err!(self_attn(bad) => InvalidParameter);
    let mut bad = mha.weights.clone();
    bad.b_o = bias(e + 1);
    assert_err!(self_attn(bad) => LengthMismatch);
    // Valid, and zero rows.
    let (out, w) = mha
        .forward_with_weights(&x, &x, &x, WeightsKind::Both, &o)
        .unwrap();
    assert_eq!(out.shape(), (3, e));
    assert_eq!(w.per_head.map(|p| p.len()), Some(2));
    assert_eq!(w.averaged.map(|a| a.shape()), Some((3, 3)));
    let none = mha.forward_self(&Matrix::zeros(0, e).unwrap(), &o);
    assert_eq!(none.unwrap().shape(), (0, e));
    // NaN in one query row stays in that row.
    let mut xn = x.clone();
    xn.as_mut_slice()[0] = f32::NAN;
    let out = mha.forward(&xn, &x, &x, &o).unwrap();
    assert!(out.row(0).unwrap().iter().all(|v| v.is_nan()));
    assert!(out.as_slice()[e..].iter().all(|v| v.is_finite()));
}

// ------------------------------------------------------------------ attention::mpt

/// MPT weights: d_model 4, 2 heads of width 2 (fused width 8).
struct MptW {
    w_qkv: Matrix<f32>,
    w_out: Matrix<f32>,
}

impl MptW {
    fn new() -> Self {
        Self {
            w_qkv: mat(8, 4, |i| (i % 5) as f32 / 5.0 - 0.3),
            w_out: mat(4, 4, |i| (i % 3) as f32),
        }
    }
    fn params(&self) -> MptParams<'_, f32> {
        MptParams {
            heads: 2,
            w_qkv: self.w_qkv.view(),
            b_qkv: None,
            w_out: self.w_out.view(),
            b_out: None,
            clip_qkv: None,
            qk_ln: None,
            softmax_scale: None,
        }
    }
}

#[test]
fn audit_mpt_project_rejects_bad_input() {
    let w = MptW::new();
    let p = w.params();
    let x = mat(2, 4, |i| i as f32 / 8.0);
    let (mut q, mut k, mut v) = ([0.0f32; 8], [0.0f32; 4], [0.0f32; 4]);
    let mut run = |p: &MptParams<'_, f32>, x: &Matrix<f32>, qc: usize| {
        mpt_project_views(
            p,
            x.view(),
            MatMut::new(&mut q[..2 * qc], 2, qc).unwrap(),
            MatMut::new(&mut k, 2, 2).unwrap(),
            MatMut::new(&mut v, 2, 2).unwrap(),
        )
    };
    assert_err!(run(&MptParams { heads: 0, ..p }, &x, 4) => InvalidParameter);
    assert_err!(run(&MptParams { heads: 3, ..p }, &x, 4) => InvalidParameter);
    let w7 = mat(7, 4, |_| 0.0);
    assert_err!(run(&MptParams { w_qkv: w7.view(), ..p }, &x, 4) => ShapeMismatch);
    for c in [-1.0f32, f32::NAN, f32::NEG_INFINITY] {
        let r = run(
            &MptParams {
                clip_qkv: Some(c),
                ..p
            },
            &x,
            4,
        );
        assert_err!(r => InvalidParameter { what: "MPT attention: clip_qkv", .. }, "clip {c}");
    }
    let b7 = [0.0f32; 7];
    assert_err!(run(&MptParams { b_qkv: Some(&b7), ..p }, &x, 4) => LengthMismatch);
    assert_err!(run(&p, &x, 2) => ShapeMismatch);
    assert_err!(run(&p, &mat(2, 3, |_| 0.0), 4) => ShapeMismatch);
    let (ones4, ones2, short) = ([1.0f32; 4], [1.0f32; 2], [1.0f32; 1]);
    let ln = QkNormParams {
        q_weight: &ones4,
        q_bias: &ones4,
        k_weight: &ones2,
        k_bias: &ones2,
    };
    let (mut short_q, mut short_k) = (ln, ln);
    (short_q.q_weight, short_k.k_bias) = (&short, &short);
    for bad in [short_q, short_k] {
        assert_err!(run(&MptParams { qk_ln: Some(bad), ..p }, &x, 4) => LengthMismatch);
    }
    // Valid: clip 0 and +∞ are allowed.
    let mut ok = p;
    (ok.clip_qkv, ok.qk_ln) = (Some(0.0), Some(ln));
    run(&ok, &x, 4).unwrap();
    (ok.clip_qkv, ok.qk_ln) = (Some(f32::INFINITY), None);
    run(&ok, &x, 4).unwrap();
    // NaN in x passes through the clamp into that row's q, k and v.
    let mut xn = x.clone();
    xn.as_mut_slice()[4] = f32::NAN; // row 1
    let (mut q, mut k, mut v) = ([0.0f32; 8], [0.0f32; 4], [0.0f32; 4]);
    mpt_project_views_with::<Scalar, f32>(
        &MptParams {
            clip_qkv: Some(0.5),
            ..p
        },
        xn.view(),
        MatMut::new(&mut q, 2, 4).unwrap(),
        MatMut::new(&mut k, 2, 2).unwrap(),
        MatMut::new(&mut v, 2, 2).unwrap(),
    )
    .unwrap();
    let row1 = q[4..].iter().chain(&k[2..]).chain(&v[2..]);
    assert!(row1.copied().all(f32::is_nan));
    let row0 = q[..4].iter().chain(&k[..2]).chain(&v[..2]);
    assert!(row0.copied().all(|x| x.abs() <= 0.5));
}

#[test]
fn audit_mpt_forward_views_leaves_cache_unchanged_on_err() {
    let w = MptW::new();
    let p = w.params();
    let (x, mut cache, good) = one_token_step();
    let before = snapshot(&cache);
    let o = AttnOptions::<f32>::new();
    // `sizes`: score length, output columns.
    let run = |p: &MptParams<'_, f32>,
               cache: &mut KvCacheDyn<f32>,
               shapes: [(usize, usize); 4],
               sizes: [usize; 2],
               o: &AttnOptions<'_, f32>| {
        one_token(shapes, sizes, |b, out| {
            mpt_forward_views(p, x.view(), Some(cache), b, out, WeightsOut::None, o)
        })
    };
    let (c, g) = (&mut cache, [4, 4]);
    let (wo3, b3) = (mat(4, 3, |_| 0.0), [0.0f32; 3]);
    assert_err!(run(&MptParams { w_out: wo3.view(), ..p }, c, good, g, &o) => ShapeMismatch);
    assert_err!(run(&MptParams { b_out: Some(&b3), ..p }, c, good, g, &o) => LengthMismatch);
    assert_err!(run(&p, c, good, [4, 3], &o) => ShapeMismatch);
    assert_err!(run(&MptParams { clip_qkv: Some(-1.0), ..p }, c, good, g, &o) => InvalidParameter);
    assert_err!(run(&MptParams { heads: 3, ..p }, c, good, g, &o) => InvalidParameter);
    let k_buf = [(1, 4), (1, 3), (1, 2), (1, 4)];
    assert_err!(run(&p, c, k_buf, g, &o) => ShapeMismatch);
    let ctx_buf = [(1, 4), (1, 2), (1, 2), (1, 3)];
    assert_err!(run(&p, c, ctx_buf, g, &o) => ShapeMismatch);
    assert_err!(run(&p, c, good, [1, 4], &o) => BufferTooSmall);
    assert_err!(run(&p, c, good, g, &o.window(0)) => InvalidParameter);
    assert_err!(run(&p, c, good, g, &o.key_allow(&[true; 5])) => LengthMismatch);
    assert_eq!(snapshot(&cache), before);
    // A cache of 2 kv heads (MPT has one).
    let mut c2 = KvCacheDyn::<f32>::new(2, 2, 2, CachePolicy::Bounded).unwrap();
    let r = run(&p, &mut c2, good, g, &o);
    assert_err!(r => InvalidParameter { what: "attention: cache", .. });
    assert!(c2.is_empty());
    // Fill the cache, then it is full.
    run(&p, &mut cache, good, g, &o).unwrap();
    let full = snapshot(&cache);
    assert_err!(run(&p, &mut cache, good, g, &o) => CacheFull { capacity: 2 });
    assert_eq!(snapshot(&cache), full);
    // Without a cache: the options still count.
    let scalar = mpt_forward_views_with::<Scalar, f32, KvCacheDyn<f32>>;
    let w0 = o.window(0);
    let r = one_token(good, [2, 4], |b, out| {
        scalar(&p, x.view(), None, b, out, WeightsOut::None, &w0)
    });
    assert!(is_invalid(&r), "{r:?}");
}

#[test]
fn audit_mpt_layers_reject_bad_config_and_full_cache() {
    let w_qkv = [[0.1f32; 4]; 8];
    let w_out = [[0.2f32; 4]; 4];
    let weights = MptWeights {
        w_qkv: &w_qkv,
        b_qkv: None,
        w_out: &w_out,
        b_out: None,
        qk_ln: None,
    };
    let config = |clip_qkv, softmax_scale| MptConfig {
        clip_qkv,
        softmax_scale,
    };
    let layer = MptAttention::<f32, 4, 2, 2, 8>::new(weights, MptConfig::default());
    let p = layer.params();
    assert_eq!((p.heads, p.w_qkv.shape()), (2, (8, 4)));
    assert_eq!((p.clip_qkv, p.softmax_scale), (None, None));
    let bad = MptAttention::<f32, 4, 2, 2, 8>::new(weights, config(Some(-0.5), None));
    let badscale = MptAttention::<f32, 4, 2, 2, 8>::new(weights, config(None, Some(f32::NAN)));
    let x = [[1.0f32; 4]; 2];
    let mut out = [[0.0f32; 4]; 2];
    let mut s = DecoderScratch::<f32, 2, 2, 1, 2, 2>::new();
    let o = AttnOptions::<f32>::new();
    for l in [&bad, &badscale] {
        assert_err!(l.forward(&x, &mut s, &mut out, WeightsOut::None, &o) => InvalidParameter);
    }
    let w0 = o.window(0);
    assert_err!(layer.forward(&x, &mut s, &mut out, WeightsOut::None, &w0) => InvalidParameter);
    let mut w3 = [0.0f32; 3];
    let w3 = WeightsOut::Averaged(&mut w3);
    assert_err!(layer.forward(&x, &mut s, &mut out, w3, &o) => LengthMismatch);
    layer
        .forward(&x, &mut s, &mut out, WeightsOut::None, &o.causal())
        .unwrap();
    // Cached: a 2-token chunk into a bounded cache of 3.
    let mut cache = KvCache::<f32, 1, 2, 3>::new();
    let mut sc = DecoderScratch::<f32, 2, 2, 1, 2, 5>::new();
    let mut cached = |l: &MptAttention<'_, f32, 4, 2, 2, 8>, cache: &mut KvCache<f32, 1, 2, 3>| {
        l.forward_cached(&x, cache, &mut sc, &mut out, WeightsOut::None, &o)
    };
    cached(&layer, &mut cache).unwrap();
    let before = snapshot(&cache);
    assert_err!(cached(&layer, &mut cache) => CacheFull { capacity: 3 });
    let mut one = DecoderScratch::<f32, 1, 2, 1, 2, 4>::new();
    for l in [&bad, &badscale] {
        let r = l.forward_cached(
            &[[0.0; 4]],
            &mut cache,
            &mut one,
            &mut [[0.0; 4]],
            WeightsOut::None,
            &o,
        );
        assert!(is_invalid(&r), "{r:?}");
    }
    assert_eq!(snapshot(&cache), before);
    // Runtime layer.
    let dynl = |heads: usize, w_qkv: Matrix<f32>| MptAttentionDyn::<f32> {
        heads,
        w_qkv,
        b_qkv: None,
        w_out: mat(4, 4, |_| 0.1),
        b_out: None,
        qk_ln: None,
        config: MptConfig::default(),
        backend: core::marker::PhantomData,
    };
    let good = dynl(2, mat(8, 4, |i| i as f32 / 32.0));
    let xm = mat(2, 4, |i| i as f32);
    assert_err!(good.forward(&mat(2, 3, |_| 0.0), None, &o) => ShapeMismatch);
    assert_err!(dynl(0, mat(8, 4, |_| 0.0)).forward(&xm, None, &o) => InvalidParameter);
    assert_err!(dynl(3, mat(8, 4, |_| 0.0)).forward(&xm, None, &o) => InvalidParameter);
    assert_err!(dynl(2, mat(9, 4, |_| 0.0)).forward(&xm, None, &o) => ShapeMismatch);
    let mut dc = KvCacheDyn::<f32>::new(1, 2, 3, CachePolicy::Bounded).unwrap();
    good.forward(&xm, Some(&mut dc), &o).unwrap();
    let before = snapshot(&dc);
    assert_err!(good.forward(&xm, Some(&mut dc), &o) => CacheFull { capacity: 3 });
    assert_err!(good.forward(&mat(1, 5, |_| 0.0), Some(&mut dc), &o) => ShapeMismatch);
    let x1 = mat(1, 4, |_| 0.0);
    assert_err!(good.forward(&x1, Some(&mut dc), &o.window(0)) => InvalidParameter);
    assert_eq!(snapshot(&dc), before);
    let none = good.forward(&Matrix::zeros(0, 4).unwrap(), None, &o);
    assert_eq!(none.unwrap().shape(), (0, 4));
}

// ------------------------------------------------------------------ attention::self_attention

#[test]
fn audit_rotation_hooks_reject_bad_heads_and_positions() {
    let mut x = mat(2, 4, |i| i as f32);
    // Heads that do not divide the width, zero heads.
    assert_err!(rotate_heads(&NoRotation, 0, x.view_mut(), 0) => InvalidParameter);
    assert_err!(rotate_heads(&NoRotation, 0, x.view_mut(), 3) => InvalidParameter);
    assert_err!(Rotation::<f32>::rotate_rows(&NoRotation, 0, x.view_mut(), 3) => InvalidParameter);
    // Row positions past usize::MAX.
    let r = rotate_heads(&NoRotation, usize::MAX, x.view_mut(), 2);
    assert_err!(r => InvalidParameter { what: "rotate: position", .. });
    rotate_heads(&NoRotation, usize::MAX - 1, x.view_mut(), 2).unwrap();
    // Positions are checked before any row is rotated (this audit found the
    // provided rotate_rows rotating row 0 before failing on row 1's position).
    let add_one = |_pos: usize, v: &mut [f32]| -> constml::Result<()> {
        v.iter_mut().for_each(|e| *e += 1.0);
        Ok(())
    };
    let mut y = mat(2, 4, |_| 0.0);
    assert_err!(rotate_heads(&add_one, usize::MAX, y.view_mut(), 2) => InvalidParameter);
    assert_eq!(y.as_slice(), &[0.0; 8]);
    // A hook's own error passes through (a table that ends at position 2).
    let table = |pos: usize, v: &mut [f32]| -> constml::Result<()> {
        if pos >= 2 {
            return Err(Error::OutOfRange {
                what: "test table",
                index: pos,
                len: 2,
            });
        }
        v.iter_mut().for_each(|e| *e += 1.0);
        Ok(())
    };
    assert_err!(table.rotate(2, &mut [0.0]) => OutOfRange { index: 2, .. });
    assert_err!(rotate_heads(&table, 1, x.view_mut(), 2) => OutOfRange { index: 2, len: 2, .. });
    let (mut q, mut k) = ([[[0.0f32; 2]; 2]; 3], [[[0.0f32; 2]; 1]; 3]);
    assert_err!(rotate_qk(&table, 0, &mut q, &mut k) => OutOfRange { index: 2, .. });
    // Edges: NoRotation, zero-width heads and zero rows are fine.
    assert!(NoRotation.rotate(usize::MAX, &mut [1.0f32]).is_ok());
    let mut empty = Matrix::<f32>::zeros(2, 0).unwrap();
    rotate_heads(&table, 5, empty.view_mut(), 2).unwrap();
    let mut none = Matrix::<f32>::zeros(0, 4).unwrap();
    rotate_heads(&table, usize::MAX, none.view_mut(), 2).unwrap();
    let (mut q0, mut k0) = ([[[0.0f32; 2]; 2]; 0], [[[0.0f32; 2]; 1]; 0]);
    rotate_qk(&table, 9, &mut q0, &mut k0).unwrap();
}

/// A projection into q, k, v views (`project_qkv_views`, `mpt_project_views`
/// and their Scalar faces).
type Project<P> = fn(
    &P,
    MatRef<'_, f32>,
    MatMut<'_, f32>,
    MatMut<'_, f32>,
    MatMut<'_, f32>,
) -> constml::Result<()>;

/// Runs `f` on `x` into fresh q, k and v buffers of the given (rows, columns);
/// returns its result and the buffers.
fn project<P>(
    f: Project<P>,
    p: &P,
    x: &Matrix<f32>,
    shapes: [(usize, usize); 3],
) -> (constml::Result<()>, [Vec<f32>; 3]) {
    let mut bufs = shapes.map(|(r, c)| vec![0.0f32; r * c]);
    let [q, k, v] = &mut bufs;
    fn view(b: &mut [f32], (r, c): (usize, usize)) -> MatMut<'_, f32> {
        MatMut::new(b, r, c).unwrap()
    }
    let r = f(
        p,
        x.view(),
        view(q, shapes[0]),
        view(k, shapes[1]),
        view(v, shapes[2]),
    );
    (r, bufs)
}

#[test]
fn audit_project_qkv_views_rejects_bad_shapes() {
    let w = MhaW::decoder();
    let p = w.params();
    let x = mat(2, 4, |i| i as f32);
    let run = |p: &MhaParams<'_, f32>, x: &Matrix<f32>, qc: usize| {
        project(project_qkv_views, p, x, [(2, qc), (2, 2), (2, 2)]).0
    };
    assert_err!(run(&p, &mat(2, 3, |_| 0.0), 4) => ShapeMismatch);
    assert_err!(run(&p, &x, 2) => ShapeMismatch);
    let b3 = [0.0f32; 3];
    assert_err!(run(&MhaParams { b_k: Some(&b3), ..p }, &x, 4) => LengthMismatch);
    assert_err!(run(&MhaParams { b_v: Some(&b3), ..p }, &x, 4) => LengthMismatch);
    assert!(run(&p, &x, 4).is_ok());
    let x3 = mat(3, 4, |_| 0.0);
    let scalar = project_qkv_views_with::<Scalar, f32>;
    let (r, _) = project(scalar, &p, &x3, [(3, 4), (2, 2), (2, 2)]);
    assert!(is_shape(&r), "{r:?}");
}

#[test]
fn audit_decoder_attention_views_leaves_cache_unchanged_on_err() {
    let w = MhaW::decoder();
    let p = w.params();
    let (x, mut cache, good) = one_token_step();
    let before = snapshot(&cache);
    let o = AttnOptions::<f32>::new();
    let table = |pos: usize, _v: &mut [f32]| -> constml::Result<()> {
        if pos >= 1 {
            Err(Error::OutOfRange {
                what: "test table",
                index: pos,
                len: 1,
            })
        } else {
            Ok(())
        }
    };
    // `sizes`: score length, output columns.
    let run = |p: &MhaParams<'_, f32>,
               x: &Matrix<f32>,
               cache: &mut KvCacheDyn<f32>,
               rot: &dyn Rotation<f32>,
               shapes: [(usize, usize); 4],
               sizes: [usize; 2],
               o: &AttnOptions<'_, f32>| {
        one_token(shapes, sizes, |b, out| {
            decoder_attention_views(p, x.view(), cache, rot, b, out, o)
        })
    };
    let (c, g, nr) = (&mut cache, [4, 4], &NoRotation);
    let mut h3 = p;
    (h3.heads, h3.kv_heads) = (3, 2);
    assert_err!(run(&h3, &x, c, nr, good, g, &o) => InvalidParameter);
    assert_err!(run(&MhaParams { heads: 0, ..p }, &x, c, nr, good, g, &o) => InvalidParameter);
    assert_err!(run(&p, &mat(1, 3, |_| 0.0), c, nr, good, g, &o) => ShapeMismatch);
    let wo3 = mat(4, 3, |_| 0.0);
    assert_err!(run(&MhaParams { w_o: wo3.view(), ..p }, &x, c, nr, good, g, &o) => ShapeMismatch);
    assert_err!(run(&p, &x, c, nr, good, [4, 3], &o) => ShapeMismatch);
    assert_err!(run(&p, &x, c, &table, good, g, &o) => OutOfRange);
    let k_buf = [(1, 4), (1, 3), (1, 2), (1, 4)];
    assert_err!(run(&p, &x, c, nr, k_buf, g, &o) => ShapeMismatch);
    assert_err!(run(&p, &x, c, nr, good, [1, 4], &o) => BufferTooSmall);
    assert_err!(run(&p, &x, c, nr, good, g, &o.window(0)) => InvalidParameter);
    assert_err!(run(&p, &x, c, nr, good, g, &o.scale(f32::NAN)) => InvalidParameter);
    assert_eq!(snapshot(&cache), before);
    // Weights for 2 kv heads (k/v of width 4 = 2·2) over a cache of 1 kv head.
    let wkv2 = mat(4, 4, |_| 0.0);
    let mut p2 = p;
    (p2.kv_heads, p2.w_k, p2.w_v) = (2, wkv2.view(), wkv2.view());
    let r = run(&p2, &x, &mut cache, nr, [(1, 4); 4], g, &o);
    assert_err!(r => InvalidParameter { what: "attention: cache", .. });
    assert_eq!(snapshot(&cache), before);
    // Fill, then full.
    run(&p, &x, &mut cache, nr, good, g, &o).unwrap();
    let full = snapshot(&cache);
    assert_err!(run(&p, &x, &mut cache, nr, good, g, &o) => CacheFull { capacity: 2 });
    let scalar = decoder_attention_views_with::<Scalar, f32, _>;
    let r = one_token(good, [4, 4], |b, out| {
        scalar(&p, x.view(), &mut cache, nr, b, out, &o)
    });
    assert_err!(r => CacheFull);
    assert_eq!(snapshot(&cache), full);
}

#[test]
fn audit_attend_cache_const_rejects_bad_input() {
    let mut cache = KvCache::<f32, 1, 2, 4>::new();
    cache.append(&[[0.1, 0.2]], &[[1.0, 2.0]]).unwrap();
    cache.append(&[[0.3, 0.4]], &[[3.0, 4.0]]).unwrap();
    let q = [[[0.5f32, 0.5]; 2]; 1];
    let mut ctx = [[[0.0f32; 2]; 2]; 1];
    let o = AttnOptions::<f32>::new();
    // S = 1 score column for 2 held keys (S is not checked at compile time here).
    let mut s1 = [[0.0f32; 1]; 1];
    assert_err!(
        attend_cache(&q, 1, &cache, None, &mut ctx, &mut s1, WeightsOut::None, &o) => BufferTooSmall
    );
    let mut s = [[0.0f32; 3]; 1];
    let scalar = attend_cache_with::<Scalar, f32, 1, 2, 1, 2, 4, 3>;
    let w0 = o.window(0);
    assert_err!(
        scalar(&q, 1, &cache, None, &mut ctx, &mut s, WeightsOut::None, &w0) => InvalidParameter
    );
    let mut run =
        |start: usize, pending: Option<PendingKv<'_, f32, 1, 1, 2>>, w: WeightsOut<'_, f32>| {
            attend_cache(&q, start, &cache, pending, &mut ctx, &mut s, w, &o)
        };
    // Newer than the newest key; weights of the wrong length.
    assert_err!(run(2, None, WeightsOut::None) => InvalidParameter);
    assert_err!(run(1, None, WeightsOut::PerHead(&mut [0.0; 3])) => LengthMismatch);
    // Valid: the last held position, or the next one with the token pending.
    run(1, None, WeightsOut::None).unwrap();
    let kv = [[[0.0f32, 1.0]; 1]; 1];
    run(2, Some((&kv, &kv)), WeightsOut::None).unwrap();
    // Ring of 2 holding 1..3: a query at 0 needs position 0, which is gone.
    let mut ring = KvCache::<f32, 1, 2, 2>::new_ring();
    for _ in 0..3 {
        ring.append(&[[1.0, 1.0]], &[[1.0, 1.0]]).unwrap();
    }
    let r = attend_cache(&q, 0, &ring, None, &mut ctx, &mut s, WeightsOut::None, &o);
    assert_err!(r => PositionNotHeld { position: 0, oldest: 1, next: 3 });
}

#[test]
fn audit_causal_self_attention_leaves_cache_unchanged_on_err() {
    const DM: usize = 4;
    let wq = [[[0.1f32; DM]; 2]; 2];
    let wkv = [[[0.2f32; DM]; 2]; 1];
    let wo = [[[0.3f32; 2]; 2]; DM];
    let layer = CausalSelfAttention::<f32, DM, 2, 1, 2>::new(DecoderWeights {
        w_q: &wq,
        b_q: None,
        w_k: &wkv,
        b_k: None,
        w_v: &wkv,
        b_v: None,
        w_o: &wo,
        b_o: None,
    });
    let p = layer.params().unwrap();
    assert_eq!((p.heads, p.kv_heads), (2, 1));
    // Pieces 1 and 5 have compile-time shapes only; zero and one token.
    let (mut q, mut k, mut v) = (
        [[[0.0f32; 2]; 2]; 1],
        [[[0.0f32; 2]; 1]; 1],
        [[[0.0f32; 2]; 1]; 1],
    );
    layer.project(&[[1.0; DM]], &mut q, &mut k, &mut v).unwrap();
    assert_eq!(q[0][0], [0.4, 0.4]);
    layer.project(&[], &mut [], &mut [], &mut []).unwrap();
    let mut out = [[0.0f32; DM]];
    layer.out_proj(&[[[1.0, 1.0]; 2]], &mut out).unwrap();
    assert!((out[0][0] - 1.2).abs() < 1e-6);
    layer.out_proj(&[], &mut []).unwrap();
    // A bounded cache of 2 and a RoPE table of 1 position that errors past it.
    let rope = Rope::<f32, 2>::new(RopeConfig::new(RopeLayout::Interleaved)).unwrap();
    let (mut cos, mut sin) = ([[0.0f32; 2]; 1], [[0.0f32; 2]; 1]);
    let table = RopeTable::new(rope, &mut cos, &mut sin, BeyondTable::Error);
    let mut cache = KvCache::<f32, 1, 2, 2>::new();
    let mut s = DecoderScratch::<f32, 1, 2, 1, 2, 3>::new();
    let o = AttnOptions::<f32>::new();
    let mut fwd =
        |rot: &dyn Rotation<f32>, cache: &mut KvCache<f32, 1, 2, 2>, o: &AttnOptions<'_, f32>| {
            layer.forward(&[[1.0; DM]], cache, rot, &mut s, &mut out, o)
        };
    fwd(&table, &mut cache, &o).unwrap();
    let before = snapshot(&cache);
    assert_err!(fwd(&table, &mut cache, &o) => OutOfRange { index: 1, len: 1, .. });
    assert_err!(fwd(&NoRotation, &mut cache, &o.window(0)) => InvalidParameter);
    assert_eq!(snapshot(&cache), before);
    fwd(&NoRotation, &mut cache, &o).unwrap();
    let full = snapshot(&cache);
    assert_err!(fwd(&NoRotation, &mut cache, &o) => CacheFull { capacity: 2 });
    assert_eq!(snapshot(&cache), full);

    // Runtime block.
    let wd = MhaWeightsDyn {
        heads: 2,
        kv_heads: 1,
        w_q: mat(4, 4, |_| 0.1),
        b_q: None,
        w_k: mat(2, 4, |_| 0.2),
        b_k: None,
        w_v: mat(2, 4, |_| 0.2),
        b_v: None,
        w_o: mat(4, 4, |_| 0.3),
        b_o: None,
    };
    let dl = CausalSelfAttentionDyn::<f32>::new(wd.clone());
    let mut dc = KvCacheDyn::<f32>::new(1, 2, 2, CachePolicy::Bounded).unwrap();
    let x = mat(1, 4, |_| 1.0);
    dl.forward(&x, &mut dc, &NoRotation, &o).unwrap();
    let before = snapshot(&dc);
    assert_err!(dl.forward(&mat(1, 3, |_| 0.0), &mut dc, &NoRotation, &o) => ShapeMismatch);
    let x2 = mat(2, 4, |_| 0.0);
    assert_err!(dl.forward(&x2, &mut dc, &NoRotation, &o) => CacheFull { capacity: 2 });
    assert_err!(dl.forward(&x, &mut dc, &NoRotation, &o.window(0)) => InvalidParameter);
    let mut bad = wd.clone();
    bad.heads = 0;
    let bad = CausalSelfAttentionDyn::<f32>::new(bad);
    assert_err!(bad.forward(&x, &mut dc, &NoRotation, &o) => InvalidParameter);
    let mut dc2 = KvCacheDyn::<f32>::new(2, 2, 2, CachePolicy::Bounded).unwrap();
    let r = dl.forward(&x, &mut dc2, &NoRotation, &o);
    assert_err!(r => InvalidParameter { what: "attention: cache", .. });
    assert!(dc2.is_empty());
    assert_eq!(snapshot(&dc), before);
}

// ------------------------------------------------------------------ position::alibi

#[test]
fn audit_alibi_rejects_bad_heads_and_slopes() {
    assert_err!(alibi_slope(0, 0, 8.0) => InvalidParameter { what: "ALiBi: heads", .. });
    assert_err!(alibi_slope(2, 2, 8.0) => OutOfRange { index: 2, len: 2, .. });
    assert_err!(alibi_slope(usize::MAX, 2, 8.0) => OutOfRange);
    for b in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_err!(alibi_slope(0, 4, b) => InvalidParameter { what: "ALiBi: max_bias", .. });
    }
    assert_eq!(alibi_slope(0, 1, 8.0).unwrap(), 1.0 / 256.0);
    assert_eq!(alibi_slope(0, 1, 0.0).unwrap(), 1.0);
    let last = alibi_slope(usize::MAX - 1, usize::MAX, 8.0);
    assert_eq!(last.map(|s| s > 0.0), Ok(true));
    // Slopes into a slice: nothing written on an Err.
    let mut none: [f32; 0] = [];
    assert_err!(alibi_slopes_into(&mut none, 8.0) => InvalidParameter);
    let mut out = [7.0f32; 3];
    assert_err!(alibi_slopes_into(&mut out, f64::NAN) => InvalidParameter);
    assert_eq!(out, [7.0; 3]);
    alibi_slopes_into(&mut out, 8.0).unwrap();
    assert_eq!(out[0], 2f32.powf(-8.0 / 2.0));
    assert_eq!(alibi_slopes::<f64, 1>(), [1.0 / 256.0]);
    // Alibi::new: at least one slope, all finite.
    let empty: [f32; 0] = [];
    let r = Alibi::new(&empty, AlibiForm::Causal);
    assert_err!(r => InvalidParameter { what: "ALiBi: slopes", .. });
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let s = [0.5f32, bad];
        assert_err!(Alibi::new(&s, AlibiForm::Symmetric) => InvalidParameter);
    }
    let s = [0.5f32, -0.25];
    let a = Alibi::new(&s, AlibiForm::Bloom { first: 2 }).unwrap();
    assert_eq!(
        (a.slopes(), a.form()),
        (&s[..], AlibiForm::Bloom { first: 2 })
    );
    assert_eq!(ScoreBias::<f32>::heads(&a), Some(2));
}

#[test]
fn audit_alibi_fill_views_rejects_bad_out() {
    let s = [0.5f32, 0.25];
    let a = Alibi::new(&s, AlibiForm::Causal).unwrap();
    let mut buf = [9.0f32; 6];
    // 3 rows are not heads · NQ for 2 heads.
    let r = a.fill_views(0, 0, MatMut::new(&mut buf, 3, 2).unwrap());
    assert_err!(r => InvalidParameter { what: "ALiBi: out", .. });
    // Query or key positions past usize::MAX.
    let out = MatMut::new(&mut buf[..4], 4, 1).unwrap();
    assert_err!(a.fill_views(usize::MAX, 0, out) => InvalidParameter);
    let out = MatMut::new(&mut buf, 2, 3).unwrap();
    assert_err!(a.fill_views(0, usize::MAX - 1, out) => InvalidParameter);
    assert_eq!(buf, [9.0; 6]);
    // Edges: the last positions, zero rows, zero columns.
    let out = MatMut::new(&mut buf, 2, 3).unwrap();
    a.fill_views(usize::MAX, usize::MAX - 2, out).unwrap();
    assert_eq!(buf[..3], [-1.0, -0.5, 0.0]);
    a.fill_views(0, 0, MatMut::new(&mut [], 0, 3).unwrap())
        .unwrap();
    a.fill_views(usize::MAX, usize::MAX, MatMut::new(&mut [], 4, 0).unwrap())
        .unwrap();
}

// ------------------------------------------------------------------ position::learned

#[test]
fn audit_learned_positions_reject_positions_past_the_table() {
    static WPE: [[f32; 2]; 3] = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]];
    type L = LearnedPositions<f32, 3, 2>;
    let wpe = LearnedPositions::new(&WPE);
    assert_eq!(wpe.table(), &WPE);
    let mut x = [[1.0f32; 2]; 2];
    assert_err!(wpe.add(2, &mut x) => OutOfRange { index: 3, len: 3, .. });
    assert_err!(wpe.add(usize::MAX, &mut x) => OutOfRange);
    assert_err!(wpe.add_with::<Scalar, 2>(2, &mut x) => OutOfRange);
    assert_err!(wpe.add_at(&[0, 3], &mut x) => OutOfRange { index: 3, len: 3, .. });
    assert_eq!(x, [[1.0; 2]; 2]);
    let mut grad = [[0.0f32; 2]; 3];
    assert_err!(L::backward(2, &[[1.0; 2]; 2], &mut grad) => OutOfRange);
    assert_err!(L::backward_at(&[1, usize::MAX], &[[1.0; 2]; 2], &mut grad) => OutOfRange);
    assert_eq!(grad, [[0.0; 2]; 3]);
    // Edges: zero rows anywhere, the last position.
    let mut none: [[f32; 2]; 0] = [];
    wpe.add(usize::MAX, &mut none).unwrap();
    wpe.add_at(&[], &mut none).unwrap();
    let mut last = [[0.0f32; 2]];
    wpe.add(2, &mut last).unwrap();
    assert_eq!(last, [[0.5, 0.6]]);
    L::backward(usize::MAX, &[], &mut grad).unwrap();
    // SGD: a non-finite learning rate changes nothing.
    let mut owned = LearnedPositions::new(WPE);
    let g = [[1.0f32; 2]; 3];
    for lr in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let r = owned.sgd_step(&g, lr);
        assert_err!(r => InvalidParameter { what: "learned positions: learning rate", .. });
    }
    assert_eq!(owned.table(), &WPE);
    owned.sgd_step(&g, 0.0).unwrap();
    assert_eq!(owned.into_inner(), WPE);
}

#[test]
fn audit_learned_views_reject_bad_shapes() {
    let table = mat(3, 2, |i| i as f32);
    let t = table.view();
    let mut x = mat(2, 2, |_| 1.0);
    let x0 = x.clone();
    let mut x3 = mat(2, 3, |_| 1.0);
    assert_err!(learned_add_views(t, 0, x3.view_mut()) => LengthMismatch);
    assert_err!(learned_add_views_with::<Scalar, f32>(t, 2, x.view_mut()) => OutOfRange);
    assert_err!(learned_add_at_views(t, &[0], x.view_mut()) => LengthMismatch);
    let scalar = learned_add_at_views_with::<Scalar, f32>;
    assert_err!(scalar(t, &[0, 1], x3.view_mut()) => LengthMismatch);
    assert_err!(learned_add_at_views(t, &[0, 3], x.view_mut()) => OutOfRange);
    assert_eq!(x, x0);
    let mut grad = mat(3, 2, |_| 0.0);
    let g0 = grad.clone();
    assert_err!(learned_backward_views(0, x3.view(), grad.view_mut()) => LengthMismatch);
    let scalar = learned_backward_views_with::<Scalar, f32>;
    assert_err!(scalar(2, x.view(), grad.view_mut()) => OutOfRange);
    assert_err!(learned_backward_at_views(&[0, 1, 2], x.view(), grad.view_mut()) => LengthMismatch);
    let scalar = learned_backward_at_views_with::<Scalar, f32>;
    assert_err!(scalar(&[0, 1], x3.view(), grad.view_mut()) => LengthMismatch);
    assert_err!(learned_backward_at_views(&[3, 0], x.view(), grad.view_mut()) => OutOfRange);
    assert_eq!(grad, g0);
    let mut t = table.clone();
    let g2 = mat(2, 2, |_| 0.0);
    assert_err!(learned_sgd_step_views(t.view_mut(), g2.view(), 0.1) => ShapeMismatch);
    let scalar = learned_sgd_step_views_with::<Scalar, f32>;
    assert_err!(scalar(t.view_mut(), grad.view(), f32::NAN) => InvalidParameter);
    assert_eq!(t, table);
    learned_sgd_step_views(t.view_mut(), grad.view(), 0.1).unwrap();
    // Runtime face.
    assert_err!(LearnedPositionsDyn::<f32>::zeros(usize::MAX, 2) => InvalidParameter);
    let mut d = LearnedPositionsDyn::<f32>::new(table.clone()).unwrap();
    assert_eq!((d.table(), d.grad().shape()), (&table, (3, 2)));
    assert_err!(d.forward(2, &mut x) => OutOfRange);
    assert_err!(d.forward(0, &mut x3) => LengthMismatch);
    assert_err!(d.forward_at(&[0], &mut x) => LengthMismatch);
    assert_err!(d.forward_at(&[9, 0], &mut x) => OutOfRange);
    assert_eq!(x, x0);
    assert_err!(d.backward(2, &x) => OutOfRange);
    assert_err!(d.backward_at(&[0, 3], &x) => OutOfRange);
    assert_err!(d.backward_at(&[0], &x) => LengthMismatch);
    assert_eq!(d.grad(), &g0);
    d.backward(0, &x).unwrap();
    assert_err!(d.sgd_step(f32::INFINITY) => InvalidParameter);
    assert_eq!(d.table(), &table);
    d.zero_grad();
    assert_eq!(d.grad(), &g0);
    // Too large to allocate.
    assert_err!(LearnedPositionsDyn::<f32>::zeros(1 << 40, 1 << 21) => InvalidParameter);
    let mut e = LearnedPositionsDyn::<f32>::zeros(0, 2).unwrap();
    assert_err!(e.forward(0, &mut x) => OutOfRange);
    e.forward(5, &mut Matrix::zeros(0, 2).unwrap()).unwrap();
    e.sgd_step(1.0).unwrap();
}

// ------------------------------------------------------------------ position::rope

#[test]
fn audit_rope_config_check_rejects_bad_parameters() {
    let c = RopeConfig::new(RopeLayout::HalfSplit);
    assert_eq!(
        (c.theta, c.scaling, c.recipe),
        (10_000.0, RopeScaling::None, RopeRecipe::Exact)
    );
    let c2 = c
        .theta(5.0)
        .scaling(RopeScaling::Linear(2.0))
        .recipe(RopeRecipe::HuggingFace);
    assert_eq!(
        (c2.theta, c2.scaling, c2.recipe),
        (5.0, RopeScaling::Linear(2.0), RopeRecipe::HuggingFace)
    );
    let hf = c.recipe(RopeRecipe::HuggingFace);
    let bad: Vec<(RopeConfig, usize)> = vec![
        (c, 0),
        (c, 3),
        (c.theta(0.0), 4),
        (c.theta(-1.0), 4),
        (c.theta(f64::NAN), 4),
        (c.theta(f64::INFINITY), 4),
        (hf.theta(1e39), 4),
        (c.scaling(RopeScaling::Linear(0.0)), 4),
        (c.scaling(RopeScaling::Linear(f64::NAN)), 4),
        (c.scaling(RopeScaling::Ntk(-2.0)), 4),
        (c.scaling(RopeScaling::Ntk(f64::INFINITY)), 4),
        (c.scaling(RopeScaling::Ntk(2.0)), 2),
        (c.scaling(RopeScaling::Ntk(1e300)), 4),
        (hf.scaling(RopeScaling::Linear(1e39)), 4),
        (hf.scaling(RopeScaling::Ntk(1e30)), 4),
    ];
    for (cfg, r) in &bad {
        let res = cfg.check(*r);
        assert!(is_invalid(&res), "{cfg:?} r={r}: {res:?}");
        assert!(is_invalid(&RopeDyn::<f32>::new(*cfg, *r)), "{cfg:?} r={r}");
    }
    assert_err!(Rope::<f32, 4>::new(c.theta(0.0)) => InvalidParameter);
    assert_err!(RopeDyn::<f32>::new(c, 1 << 62) => InvalidParameter); // too large to allocate
    assert_err!(Rope::<f64, 2>::new(c.scaling(RopeScaling::Ntk(2.0))) => InvalidParameter);
    // Valid edges and the effective base.
    c.check(2).unwrap();
    c.scaling(RopeScaling::Ntk(4.0)).check(4).unwrap();
    assert_eq!(c.scaling(RopeScaling::Ntk(4.0)).base(4), 10_000.0 * 16.0);
    assert_eq!(c.scaling(RopeScaling::Ntk(4.0)).base(2), 10_000.0);
    assert_eq!(c.base(0), 10_000.0);
}

#[test]
fn audit_rope_rotations_reject_short_heads_and_positions() {
    let rope = Rope::<f32, 4>::new(RopeConfig::new(RopeLayout::Interleaved)).unwrap();
    assert_eq!(
        (rope.config().layout, rope.freqs().len()),
        (RopeLayout::Interleaved, 2)
    );
    let (mut c, mut s) = ([0.0f32; 4], [0.0f32; 4]);
    rope.coefficients(usize::MAX, &mut c, &mut s);
    assert!(c.iter().chain(&s).all(|v| v.abs() <= 1.0));
    // One head shorter than R: nothing rotated.
    let mut h3 = [1.0f32; 3];
    assert_err!(rope.rotate(1, &mut h3) => BufferTooSmall { needed: 4, found: 3, .. });
    assert_eq!(h3, [1.0; 3]);
    // Rows: zero heads, width not a multiple, D < R, positions past usize::MAX.
    let mut x = mat(2, 6, |_| 1.0);
    let x0 = x.clone();
    assert_err!(rope.rotate_rows(0, x.view_mut(), 0) => InvalidParameter);
    assert_err!(rope.rotate_rows(0, x.view_mut(), 4) => InvalidParameter);
    assert_err!(rope.rotate_rows(0, x.view_mut(), 2) => BufferTooSmall);
    let mut x8 = mat(2, 8, |_| 1.0);
    let x80 = x8.clone();
    assert_err!(rope.rotate_rows(usize::MAX, x8.view_mut(), 2) => InvalidParameter);
    assert_err!(Rotation::rotate_rows(&rope, usize::MAX, x8.view_mut(), 2) => InvalidParameter);
    let mut q = [[[1.0f32; 4]; 2]; 2];
    assert_err!(rope.rotate_heads(usize::MAX, &mut q) => InvalidParameter);
    assert_eq!(q, [[[1.0; 4]; 2]; 2]);
    assert_eq!((&x, &x8), (&x0, &x80));
    rope.rotate_heads(usize::MAX - 1, &mut q).unwrap();
    let mut none = Matrix::zeros(0, 8).unwrap();
    rope.rotate_rows(usize::MAX, none.view_mut(), 2).unwrap();
    let mut empty = Matrix::zeros(3, 0).unwrap();
    rope.rotate_rows(0, empty.view_mut(), 2).unwrap();
    // Table: past MAX_POS with BeyondTable::Error; computed with Compute.
    let (mut cos, mut sin) = ([[0.0f32; 4]; 2], [[0.0f32; 4]; 2]);
    rope.fill_table(&mut cos, &mut sin);
    let strict = RopeTable::from_filled(rope, &cos, &sin, BeyondTable::Error);
    let lax = RopeTable::from_filled(rope, &cos, &sin, BeyondTable::Compute);
    assert_eq!(strict.rope().freqs(), rope.freqs());
    assert!(strict.cos_sin(1).is_some());
    assert!(strict.cos_sin(2).is_none() && strict.cos_sin(usize::MAX).is_none());
    let mut h = [1.0f32; 4];
    assert_err!(strict.rotate(2, &mut h) => OutOfRange { index: 2, len: 2, .. });
    assert_err!(strict.rotate(0, &mut h3) => BufferTooSmall);
    assert_eq!(h, [1.0; 4]);
    assert_err!(strict.rotate_rows(1, x8.view_mut(), 2) => OutOfRange { index: 2, len: 2, .. });
    assert_err!(lax.rotate_rows(usize::MAX, x8.view_mut(), 2) => InvalidParameter);
    assert_err!(strict.rotate_rows(0, x8.view_mut(), 3) => InvalidParameter);
    assert_err!(lax.rotate_rows(0, x.view_mut(), 2) => BufferTooSmall);
    assert_err!(Rotation::rotate(&strict, 5, &mut h) => OutOfRange);
    assert_eq!((&x, &x8), (&x0, &x80));
    let (mut a, mut b) = ([1.0f32, 2.0, 3.0, 4.0], [1.0f32, 2.0, 3.0, 4.0]);
    lax.rotate(7, &mut a).unwrap();
    rope.rotate(7, &mut b).unwrap();
    assert_eq!(a, b);
    let (mut cos2, mut sin2) = ([[0.0f32; 4]; 1], [[0.0f32; 4]; 1]);
    let t2 = RopeTable::new(rope, &mut cos2, &mut sin2, BeyondTable::Error);
    assert_err!(t2.rotate(1, &mut a) => OutOfRange);
    // Runtime face.
    let d = RopeDyn::<f32>::new(RopeConfig::new(RopeLayout::HalfSplit), 4).unwrap();
    assert_eq!((d.rotary_dim(), d.freqs().len()), (4, 2));
    assert_eq!(d.config().layout, RopeLayout::HalfSplit);
    assert_eq!(d.coefficients(3).0.len(), 4);
    assert_err!(d.rotate(0, &mut h3) => BufferTooSmall);
    assert_err!(d.rotate_rows(0, x.view_mut(), 0) => InvalidParameter);
    assert_err!(d.rotate_matrix(0, &mut x, 2) => BufferTooSmall);
    assert_err!(d.rotate_matrix(usize::MAX, &mut x8, 2) => InvalidParameter);
    let r = d.clone().with_table(usize::MAX, BeyondTable::Error);
    assert_err!(r => InvalidParameter { what: "rope table: max_pos", .. });
    // Too large.
    assert_err!(d.clone().with_table(1 << 60, BeyondTable::Compute) => InvalidParameter);
    let dt = d.clone().with_table(2, BeyondTable::Error).unwrap();
    assert_err!(dt.rotate(2, &mut h) => OutOfRange { index: 2, len: 2, .. });
    assert_err!(dt.rotate_matrix(1, &mut x8, 2) => OutOfRange { index: 2, len: 2, .. });
    assert_eq!((x, x8), (x0, x80));
    let dc = d.clone().with_table(0, BeyondTable::Compute).unwrap();
    let (mut a, mut b) = ([1.0f32, 2.0, 3.0, 4.0, 5.0], [1.0f32, 2.0, 3.0, 4.0, 5.0]);
    dc.rotate(9, &mut a).unwrap();
    d.rotate(9, &mut b).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[4], 5.0);
}

// ------------------------------------------------------------------ position::shaw

#[test]
fn audit_shaw_rejects_bad_distance_and_tables() {
    let t5 = mat(5, 2, |i| i as f32);
    let t4 = mat(4, 2, |_| 0.0);
    let r = ShawRelative::new(0, Some(t5.view()), None);
    assert_err!(r => InvalidParameter { what: "ShawRelative: max_distance", .. });
    assert_err!(ShawRelative::<f32>::new(usize::MAX, None, None) => InvalidParameter);
    assert_err!(ShawRelative::<f32>::new(usize::MAX / 2 + 1, None, None) => InvalidParameter);
    let r = ShawRelative::new(2, Some(t4.view()), None);
    assert_err!(r => LengthMismatch { what: "ShawRelative: keys", expected: 5, found: 4 });
    let r = ShawRelative::new(2, None, Some(t4.view()));
    assert_err!(r => LengthMismatch { what: "ShawRelative: values", .. });
    assert_err!(ShawRelativeDyn::new(2, Some(t5.clone()), Some(t4.clone())) => LengthMismatch);
    assert_err!(ShawRelativeDyn::new(0, Some(t5.clone()), None) => InvalidParameter);
    // Valid, no tables at all included (then every term is None).
    let s = ShawRelative::<f32>::new(usize::MAX / 2, None, None).unwrap();
    assert_eq!(
        (s.index(0, usize::MAX), s.index(usize::MAX, 0)),
        (usize::MAX - 1, 0)
    );
    let s = ShawRelative::new(2, Some(t5.view()), Some(t5.view())).unwrap();
    assert_eq!(s.max_distance(), 2);
    assert_eq!((s.index(3, 3), s.index(0, 9), s.index(9, 0)), (2, 4, 0));
    assert_eq!(s.key_term(0, 9, 0), Some(&[0.0f32, 1.0][..]));
    let d = ShawRelativeDyn::new(1, None, Some(mat(3, 1, |_| 1.0))).unwrap();
    let v = d.view();
    assert_eq!((v.max_distance(), v.key_term(0, 0, 0)), (1, None));
    assert_eq!(v.value_term(0, 0, 5), Some(&[1.0f32][..]));
    let arr = ShawRelative::from_arrays(None::<&[[f32; 1]; 3]>, Some(&[[1.0f32]; 3]));
    assert_eq!(arr.max_distance(), 1);
}

// ------------------------------------------------------------------ position::sinusoidal

#[test]
fn audit_sinusoidal_rejects_bad_base_width_and_positions() {
    let pe = Sinusoidal::new(SinusoidalLayout::Interleaved);
    let halves = Sinusoidal::new(SinusoidalLayout::Halves);
    assert_eq!((pe.base, pe.base(3.0).base), (10_000.0, 3.0));
    for b in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let bad = pe.base(b);
        assert_err!(bad.check(4) => InvalidParameter { what: "sinusoidal: base", .. });
        assert_err!(bad.value(0, 0, 4) => InvalidParameter);
        let mut t = [[5.0f32; 4]; 2];
        assert_err!(bad.table(0, &mut t) => InvalidParameter);
        assert_err!(bad.add(0, &mut t) => InvalidParameter);
        assert_eq!(t, [[5.0; 4]; 2]);
        assert_err!(bad.table_dyn::<f32>(0, 2, 4) => InvalidParameter);
    }
    for d in [0, 1, 2, 3] {
        assert_err!(halves.check(d) => InvalidParameter { what: "sinusoidal: width", .. });
        assert_err!(halves.table_dyn::<f64>(0, 1, d) => InvalidParameter);
    }
    let mut t3 = [[5.0f32; 3]; 1];
    assert_err!(halves.table(0, &mut t3) => InvalidParameter);
    assert_err!(halves.add_views(0, MatMut::from_array(&mut t3)) => InvalidParameter);
    assert_eq!(t3, [[5.0; 3]]);
    halves.check(4).unwrap();
    pe.check(0).unwrap();
    // Column past the width.
    assert_err!(pe.value(0, 4, 4) => OutOfRange { index: 4, len: 4, .. });
    assert_err!(halves.value(0, usize::MAX, 5) => OutOfRange);
    assert_eq!(halves.value(3, 4, 5).unwrap(), 0.0); // the padding column
    assert_eq!(pe.value(0, 1, 4).unwrap(), 1.0);
    // Positions past usize::MAX: nothing written.
    let mut t = [[5.0f32; 4]; 2];
    let r = pe.table(usize::MAX, &mut t);
    assert_err!(r => InvalidParameter { what: "sinusoidal: position", .. });
    assert_err!(pe.add(usize::MAX, &mut t) => InvalidParameter);
    assert_err!(pe.table_views(usize::MAX, MatMut::from_array(&mut t)) => InvalidParameter);
    assert_err!(halves.add_views(usize::MAX, MatMut::from_array(&mut t)) => InvalidParameter);
    assert_eq!(t, [[5.0; 4]; 2]);
    assert_err!(pe.table_dyn::<f32>(usize::MAX, 2, 4) => InvalidParameter);
    assert_err!(pe.table_dyn::<f32>(0, usize::MAX, 2) => InvalidParameter); // n · d overflows
    // Zero width: the table checks the positions, add has nothing to add.
    let mut w0 = [[0.0f32; 0]; 2];
    assert_err!(pe.table(usize::MAX, &mut w0) => InvalidParameter);
    pe.add(usize::MAX, &mut w0).unwrap();
    // Edges: the last position, zero rows.
    let mut one = [[0.0f32; 4]; 1];
    pe.table(usize::MAX, &mut one).unwrap();
    pe.add(usize::MAX, &mut one).unwrap();
    let mut none: [[f32; 4]; 0] = [];
    pe.table(usize::MAX, &mut none).unwrap();
    let zero_rows = pe.table_dyn::<f32>(usize::MAX, 0, 4).unwrap();
    assert_eq!(zero_rows.shape(), (0, 4));
    let padded = halves.table_dyn::<f32>(0, 2, 5).unwrap();
    assert_eq!(padded.row(1).unwrap()[4], 0.0);
}

// ------------------------------------------------------------------ position::t5

#[test]
fn audit_t5_rejects_bad_buckets_and_tables() {
    for (bi, nb, md) in [
        (true, 3, 128),
        (true, 0, 128),
        (false, 1, 128),
        (true, 32, 8),
        (false, 32, 16),
        (true, (1 << 24) + 4, 1 << 30),
    ] {
        assert!(is_invalid(&T5Buckets::new(bi, nb, md)), "{bi} {nb} {md}");
    }
    let b = T5Buckets::new(false, 2, 2).unwrap(); // max_exact 1
    assert_eq!((b.bidirectional(), b.num_buckets()), (false, 2));
    assert_eq!(b.max_distance(), 2);
    let d = T5Buckets::default();
    assert_eq!((d.bidirectional(), d.num_buckets()), (true, 32));
    assert_eq!(d.max_distance(), 128);
    // Buckets stay below num_buckets at the extremes.
    for bk in [b, d, T5Buckets::new(true, 1 << 24, 1 << 30).unwrap()] {
        for x in [
            bk.bucket(0, usize::MAX),
            bk.bucket(usize::MAX, 0),
            bk.bucket_of(isize::MIN),
            bk.bucket_of(isize::MAX),
            bk.bucket_of(0),
        ] {
            assert!(x < bk.num_buckets());
        }
    }
    // Bias tables: rows = num_buckets, at least one head.
    let t = mat(31, 2, |_| 0.0);
    let r = T5RelativeBias::new(d, t.view());
    assert_err!(r => LengthMismatch { what: "T5 bias: table rows", expected: 32, found: 31 });
    let t0 = Matrix::<f32>::zeros(32, 0).unwrap();
    let r = T5RelativeBias::new(d, t0.view());
    assert_err!(r => InvalidParameter { what: "T5 bias: heads", .. });
    assert_err!(T5RelativeBias::from_array(d, &[[0.0f32; 2]; 16]) => LengthMismatch);
    let table = [[0.5f32, -0.5]; 32];
    let bias = T5RelativeBias::from_array(d, &table).unwrap();
    assert_eq!((bias.buckets(), bias.heads()), (&d, 2));
    assert_eq!(ScoreBias::<f32>::heads(&bias), Some(2));
    // fill_views: rows heads · NQ, positions representable; nothing written on an Err.
    let mut buf = [9.0f32; 6];
    let r = bias.fill_views(0, 0, MatMut::new(&mut buf, 3, 2).unwrap());
    assert_err!(r => InvalidParameter { what: "T5 bias: out", .. });
    let out = MatMut::new(&mut buf[..4], 4, 1).unwrap();
    assert_err!(bias.fill_views(usize::MAX, 0, out) => InvalidParameter);
    let out = MatMut::new(&mut buf, 2, 3).unwrap();
    assert_err!(bias.fill_views(0, usize::MAX, out) => InvalidParameter);
    assert_eq!(buf, [9.0; 6]);
    let out = MatMut::new(&mut buf, 2, 3).unwrap();
    bias.fill_views(usize::MAX, usize::MAX - 2, out).unwrap();
    assert_eq!(buf, [0.5, 0.5, 0.5, -0.5, -0.5, -0.5]);
    bias.fill_views(0, 0, MatMut::new(&mut [], 0, 4).unwrap())
        .unwrap();
}
