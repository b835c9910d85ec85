//! Regression tests for the bugs a bad-input audit found (the consolidation
//! issue). Each test names the bug it pins.

use constml::attention::*;
use constml::decode::{BeamConfig, BeamModel, BeamScratch, Hypotheses, beam_search};
use constml::{Accumulate, Backend, Error, MatMut, MatRef, Result, Scalar, Simd};

/// Bug 1: a one-row view whose stride is shorter than its width used to be
/// accepted, and Simd then read a truncated row (0, or C left unwritten).
#[test]
fn one_row_views_follow_the_stride_rule_and_both_backends_agree() {
    let x = [1.0f32, 2.0, 3.0];
    assert!(matches!(
        MatRef::with_stride(&x, 1, 3, 0),
        Err(Error::InvalidParameter { .. })
    ));
    // A one-row view with a stride past its buffer's end is fine: its only
    // row is whole.
    let v = MatRef::with_stride(&x, 1, 3, 11).unwrap();
    fn products<B: Backend>(v: MatRef<'_, f32>) -> ([f32; 1], [f32; 3], [f32; 1]) {
        let mut dot = [7.0f32];
        B::gemm_bt(
            v,
            v,
            MatMut::new(&mut dot, 1, 1).unwrap(),
            Accumulate::Overwrite,
        )
        .unwrap();
        // k = 1: (1 × 1)·(1 × 3).
        let a = [2.0f32];
        let mut c = [f32::NAN; 3];
        B::gemm(
            MatRef::new(&a, 1, 1).unwrap(),
            v,
            MatMut::new(&mut c, 1, 3).unwrap(),
            Accumulate::Overwrite,
        )
        .unwrap();
        let mut y = [f32::NAN];
        B::matvec(v, &[1.0, 1.0, 1.0], &mut y, Accumulate::Overwrite).unwrap();
        (dot, c, y)
    }
    let want = ([14.0], [2.0, 4.0, 6.0], [6.0]);
    assert_eq!(products::<Scalar>(v), want);
    assert_eq!(products::<Simd>(v), want);

    // A single key/value row through attention returns the value row.
    let q = [0.5f32, -1.0, 2.0];
    let val = [4.0f32, 5.0];
    let kv = MatRef::with_stride(&x, 1, 3, 9).unwrap();
    let vv = MatRef::with_stride(&val, 1, 2, 5).unwrap();
    let mut out = [0.0f32; 2];
    let mut w = [0.0f32; 1];
    sdpa_views(
        MatRef::new(&q, 1, 3).unwrap(),
        kv,
        vv,
        MatMut::new(&mut out, 1, 2).unwrap(),
        &mut w,
        &AttnOptions::new(),
    )
    .unwrap();
    assert_eq!((out, w), ([4.0, 5.0], [1.0]));
}

/// A model with fixed logits for the beam-search regressions.
struct Fixed(Vec<f32>);
impl BeamModel<f32> for Fixed {
    fn step(&mut self, _b: usize, _t: usize, _p: usize, logits: &mut [f32]) -> Result<()> {
        logits.copy_from_slice(&self.0);
        Ok(())
    }
    fn reorder(&mut self, _parents: &[usize]) -> Result<()> {
        Ok(())
    }
}

fn beam(model: &mut Fixed, lp: f32) -> Result<Vec<f32>> {
    let mut s = BeamScratch::<f32, 3, 2, 2>::new();
    let mut o = Hypotheses::<f32, 2, 2>::new();
    let cfg = BeamConfig::new(2)
        .with_length_penalty(lp)
        .with_num_return(2);
    beam_search(model, &[0], &cfg, &mut s, &mut o)?;
    Ok(o.iter().map(|(_, s)| s).collect())
}

/// Bug 2: a finite but extreme `length_penalty` gave `Ok` with NaN (n^lp
/// underflowing to 0 in f32) or scores of −∞ / −0.
#[test]
fn extreme_length_penalties_are_errors_never_nan() {
    let mut m = Fixed(vec![0.0, 1.0, 0.5]);
    for lp in [-200.0f32, 200.0, 1e30, -1e30] {
        let r = beam(&mut m, lp);
        assert!(
            matches!(
                r,
                Err(Error::InvalidParameter {
                    what: "beam_search: length_penalty",
                    ..
                })
            ),
            "lp {lp}: {r:?}"
        );
    }
    for lp in [-2.0f32, 0.0, 1.0, 2.0, 60.0] {
        let scores = beam(&mut m, lp).unwrap();
        assert!(
            scores.iter().all(|s| s.is_finite() && *s < 0.0),
            "lp {lp}: {scores:?}"
        );
    }
}

/// Bug 5: a `+∞` logit in beam search had a NaN message; it is named now.
#[test]
fn positive_infinite_logit_in_beam_search_is_named() {
    let mut m = Fixed(vec![0.0, f32::INFINITY, 0.5]);
    assert_eq!(
        beam(&mut m, 1.0),
        Err(Error::InvalidParameter {
            what: "beam_search: model logits",
            reason: "must not contain +inf (its probability is undefined)",
        })
    );
}

/// The buffers of one token through a 2-head layer of width 4 with one kv head
/// of width 2 (bug 3's tests).
struct StepBuffers {
    q: [f32; 4],
    k: [f32; 2],
    v: [f32; 2],
    ctx: [f32; 4],
    scores: [f32; 16],
    out: [f32; 4],
}

impl StepBuffers {
    fn new() -> Self {
        Self {
            q: [0.0; 4],
            k: [0.0; 2],
            v: [0.0; 2],
            ctx: [0.0; 4],
            scores: [0.0; 16],
            out: [0.0; 4],
        }
    }
    /// The layer's working buffers and its output view.
    fn views(&mut self) -> (MhaBuffers<'_, f32>, MatMut<'_, f32>) {
        let buf = MhaBuffers {
            q: MatMut::new(&mut self.q, 1, 4).unwrap(),
            k: MatMut::new(&mut self.k, 1, 2).unwrap(),
            v: MatMut::new(&mut self.v, 1, 2).unwrap(),
            ctx: MatMut::new(&mut self.ctx, 1, 4).unwrap(),
            scores: &mut self.scores,
        };
        (buf, MatMut::new(&mut self.out, 1, 4).unwrap())
    }
}

/// Bug 3: the decoder and MPT layers checked their output projection after
/// the cache append, so a bad `w_o` / `b_o` returned `Err` with the cache
/// advanced. Every check now runs first.
#[test]
fn an_error_leaves_the_cache_unchanged() {
    let eye: [f32; 16] = core::array::from_fn(|i| if i % 5 == 0 { 1.0 } else { 0.0 });
    let half = &eye[..8]; // (2, 4): one kv head of width 2
    let bad_o = [0.0f32; 12]; // (4, 3): ctx has 4 columns
    let params = |w_o| MhaParams {
        heads: 2,
        kv_heads: 1,
        w_q: MatRef::new(&eye, 4, 4).unwrap(),
        b_q: None,
        w_k: MatRef::new(half, 2, 4).unwrap(),
        b_k: None,
        w_v: MatRef::new(half, 2, 4).unwrap(),
        b_v: None,
        w_o,
        b_o: None,
    };
    let good = params(MatRef::new(&eye, 4, 4).unwrap());
    let bad = params(MatRef::new(&bad_o, 4, 3).unwrap());
    let x = [0.1f32, 0.2, 0.3, 0.4];
    let xv = MatRef::new(&x, 1, 4).unwrap();
    let mut cache = KvCache::<f32, 1, 2, 4>::new();
    let mut bufs = StepBuffers::new();
    let mut run = |p: &MhaParams<'_, f32>, cache: &mut KvCache<f32, 1, 2, 4>| {
        let (buf, out) = bufs.views();
        decoder_attention_views(p, xv, cache, &NoRotation, buf, out, &AttnOptions::new())
    };
    run(&good, &mut cache).unwrap();
    assert_eq!(cache.len(), 1);
    assert!(matches!(
        run(&bad, &mut cache),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!((cache.len(), cache.next_position()), (1, 1));
    run(&good, &mut cache).unwrap();
    assert_eq!(cache.len(), 2);

    // MPT: a bias of the wrong length for out_proj.
    let w_qkv: [f32; 32] = core::array::from_fn(|i| (i % 7) as f32 / 7.0); // (8, 4)
    let b_out = [0.0f32; 4];
    // `out_proj` bias of the first `n` values (4 fit; 3 do not).
    let mpt = |n: usize| MptParams {
        heads: 2,
        w_qkv: MatRef::new(&w_qkv, 8, 4).unwrap(),
        b_qkv: None,
        w_out: MatRef::new(&eye, 4, 4).unwrap(),
        b_out: Some(&b_out[..n]),
        clip_qkv: None,
        qk_ln: None,
        softmax_scale: None,
    };
    let mut cache = KvCache::<f32, 1, 2, 4>::new();
    let mut run = |p: &MptParams<'_, f32>, cache: &mut KvCache<f32, 1, 2, 4>| {
        let (buf, out) = bufs.views();
        mpt_forward_views(
            p,
            xv,
            Some(cache),
            buf,
            out,
            WeightsOut::None,
            &AttnOptions::new(),
        )
    };
    let r = run(&mpt(3), &mut cache);
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
    assert!(cache.is_empty());
    run(&mpt(4), &mut cache).unwrap();
    assert_eq!(cache.len(), 1);
}

/// Bug 4: zero-width matrices with huge row counts made the kernels loop
/// 2^64 times; work with no elements now finishes at once.
#[test]
fn work_without_elements_finishes_at_once() {
    let empty: [f32; 0] = [];
    let huge = MatRef::new(&empty, usize::MAX, 0).unwrap();
    let mut none: [f32; 0] = [];
    for acc in [Accumulate::Overwrite, Accumulate::Add] {
        let c = MatMut::new(&mut none, usize::MAX, 0).unwrap();
        Scalar::gemm(huge, MatRef::new(&empty, 0, 0).unwrap(), c, acc).unwrap();
        let c = MatMut::new(&mut none, usize::MAX, 0).unwrap();
        Simd::gemm(huge, MatRef::new(&empty, 0, 0).unwrap(), c, acc).unwrap();
        let c = MatMut::new(&mut none, usize::MAX, 0).unwrap();
        Scalar::gemm_bt(huge, MatRef::new(&empty, 0, 0).unwrap(), c, acc).unwrap();
    }
    let mut w: [f32; 0] = [];
    let zero = MatRef::new(&empty, 0, 0).unwrap();
    sdpa_views(
        huge,
        zero,
        zero,
        MatMut::new(&mut none, usize::MAX, 0).unwrap(),
        &mut w,
        &AttnOptions::new(),
    )
    .unwrap();
    gqa_views(
        huge,
        &[HeadsKv::packed(zero, zero, KeyPositions::Range(0))],
        1,
        1,
        MatMut::new(&mut none, usize::MAX, 0).unwrap(),
        &mut w,
        WeightsOut::None,
        &AttnOptions::new(),
    )
    .unwrap();
    let m = constml::Matrix::<f32>::zeros(usize::MAX, 0).unwrap();
    let z = constml::Matrix::<f32>::zeros(0, 0).unwrap();
    let (out, w) = sdpa_dyn(&m, &z, &z, &AttnOptions::new()).unwrap();
    assert_eq!((out.shape(), w.shape()), ((usize::MAX, 0), (usize::MAX, 0)));
    assert_eq!(
        gqa_dyn(&m, &z, &z, 1, 1, &AttnOptions::new())
            .unwrap()
            .shape(),
        (usize::MAX, 0)
    );
}

/// Bug 5: the attention scale was never validated (+∞ gave zero rows, NaN
/// propagated).
#[test]
fn non_finite_scales_are_errors() {
    let q = [1.0f32, 0.0];
    let mut out = [0.0f32; 2];
    let mut w = [0.0f32; 1];
    for s in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
        let r = sdpa_views(
            MatRef::new(&q, 1, 2).unwrap(),
            MatRef::new(&q, 1, 2).unwrap(),
            MatRef::new(&q, 1, 2).unwrap(),
            MatMut::new(&mut out, 1, 2).unwrap(),
            &mut w,
            &AttnOptions::new().scale(s),
        );
        assert_eq!(
            r,
            Err(Error::InvalidParameter {
                what: "attention: scale",
                reason: "must be finite"
            })
        );
    }
    // Zero and negative scales are fine (any finite value).
    for s in [0.0f32, -2.0] {
        sdpa_views(
            MatRef::new(&q, 1, 2).unwrap(),
            MatRef::new(&q, 1, 2).unwrap(),
            MatRef::new(&q, 1, 2).unwrap(),
            MatMut::new(&mut out, 1, 2).unwrap(),
            &mut w,
            &AttnOptions::new().scale(s),
        )
        .unwrap();
    }
}

/// The batched runtime face equals per-head SDPA and PyTorch's top-left
/// causal has a name.
#[test]
fn batched_face_matches_per_head_calls() {
    let shape = AttnShape {
        batch: 2,
        heads: 4,
        kv_heads: 2,
        nq: 3,
        nk: 5,
        dk: 4,
        dv: 3,
    };
    let (lq, lk, lv, lo) = shape.lens().unwrap();
    let data = |n: usize, s: u32| -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761u32) ^ s) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    };
    let (q, k, v) = (data(lq, 1), data(lk, 2), data(lv, 3));
    let opts = AttnOptions::new().causal_top_left();
    let got = sdpa_batched_dyn(&q, &k, &v, shape, &opts).unwrap();
    assert_eq!(got.len(), lo);
    for b in 0..2 {
        for h in 0..4 {
            let g = b * 2 + h / 2;
            let qm = constml::Matrix::from_vec(3, 4, q[(b * 4 + h) * 12..][..12].to_vec()).unwrap();
            let km = constml::Matrix::from_vec(5, 4, k[g * 20..][..20].to_vec()).unwrap();
            let vm = constml::Matrix::from_vec(5, 3, v[g * 15..][..15].to_vec()).unwrap();
            let (o, w) = sdpa_dyn(&qm, &km, &vm, &opts).unwrap();
            assert_eq!(&got[(b * 4 + h) * 9..][..9], o.as_slice());
            // Top-left: query 0 sees only key 0.
            assert_eq!(w.as_slice()[..5], [1.0, 0.0, 0.0, 0.0, 0.0]);
        }
    }
    let bad = AttnShape {
        kv_heads: 3,
        ..shape
    };
    assert!(sdpa_batched_dyn(&q, &k, &v, bad, &opts).is_err());
    assert!(sdpa_batched_dyn(&q[1..], &k, &v, shape, &opts).is_err());
}
