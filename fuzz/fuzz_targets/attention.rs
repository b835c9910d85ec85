//! Attention through the runtime face on arbitrary shapes and masks.
//!
//! Invariants, for finite inputs: the weights are in [0, 1] and each row sums
//! to 1, or is all zeros exactly when no key is allowed (then the output row is
//! zeros, never NaN); the weights equal an f64 softmax over the allowed keys
//! (allow/block mask, key mask, causal alignment, window, float bias with −∞);
//! the output is the weights times the values, so each output row lies within
//! the range of the value rows; Scalar agrees with Simd. Inconsistent shapes
//! and bad options are `Err`, never a panic. The batched face agrees with
//! per-head calls.
#![no_main]
// Index loops mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use constml::attention::{AttnOptions, AttnShape, sdpa_batched_dyn, sdpa_dyn, sdpa_dyn_with};
use constml::{MatRef, Matrix, Scalar};
use constml_fuzz::{Input, close, stat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let nq = inp.range(0, 6);
    let nk = inp.range(0, 6);
    let dk = inp.range(0, 5);
    let dv = inp.range(0, 5);
    // A mismatched shape now and then.
    let bad = inp.u8() < 20;
    let (kr, kc) = if bad {
        (inp.range(0, 6), inp.range(0, 5))
    } else {
        (nk, dk)
    };
    let q = inp.vec(nq * dk, |i| i.fine_f32() / 2.0);
    let k = inp.vec(kr * kc, |i| i.fine_f32() / 2.0);
    let v = inp.vec(nk * dv, |i| i.fine_f32());
    let qm = Matrix::from_vec(nq, dk, q.clone()).unwrap();
    let km = Matrix::from_vec(kr, kc, k.clone()).unwrap();
    let vm = Matrix::from_vec(nk, dv, v.clone()).unwrap();

    let mask_kind = inp.u8() % 3;
    let mask: Vec<bool> = inp.vec(nq * nk, |i| i.u8() % 4 != 0);
    let key_kind = inp.u8() % 3;
    let key_mask: Vec<bool> = inp.vec(nk, |i| i.u8() % 4 != 0);
    let with_bias = inp.bool();
    let bias: Vec<f32> = inp.vec(nq * nk, |i| {
        if i.u8() < 40 {
            f32::NEG_INFINITY
        } else {
            i.small_f32()
        }
    });
    let causal = inp.u8() % 3; // 0 off, 1 bottom-right, 2 from a start
    let start = inp.range(0, 6);
    let window = inp.bool().then(|| inp.range(0, 4));
    let scale = match inp.u8() % 5 {
        0 => Some(inp.any_f32()),
        1 => Some(inp.small_f32()),
        _ => None,
    };

    let mut o = AttnOptions::new();
    let mref = MatRef::new(&mask, nq, nk).unwrap();
    match mask_kind {
        1 => o = o.allow(mref),
        2 => o = o.block(mref),
        _ => {}
    }
    match key_kind {
        1 => o = o.key_allow(&key_mask),
        2 => o = o.key_block(&key_mask),
        _ => {}
    }
    if with_bias {
        o = o.bias(MatRef::new(&bias, nq, nk).unwrap());
    }
    match causal {
        1 => o = o.causal(),
        2 => o = o.causal().query_start(start),
        _ => {}
    }
    if let Some(w) = window {
        o = o.window(w);
    }
    if let Some(s) = scale {
        o = o.scale(s);
    }

    if std::env::var_os("FUZZ_DEBUG").is_some() {
        eprintln!("q {q:?} k {k:?} v {v:?} mask {mask:?} key {key_mask:?} bias {bias:?} {o:?}");
    }
    let got = sdpa_dyn(&qm, &km, &vm, &o);
    // Keys and values must have the same count; an empty run of keys may have
    // any width (there is nothing to multiply).
    let expect_err = kr != nk
        || (nk > 0 && kc != dk)
        || window == Some(0)
        || scale.is_some_and(|s| !s.is_finite());
    if expect_err {
        assert!(got.is_err(), "accepted a bad call: {o:?}");
        stat("rejected");
        return;
    }
    let (out, w) = got.unwrap_or_else(|e| panic!("{e:?} for {o:?}"));
    assert_eq!((out.shape(), w.shape()), ((nq, dv), (nq, nk)));

    // The default scale is 1/√dk, and 1 for dk = 0 (every score is 0 then).
    let scale = scale.map_or(
        if dk == 0 {
            1.0
        } else {
            1.0 / (dk as f64).sqrt()
        },
        |s| s as f64,
    );
    for i in 0..nq {
        let p: i64 = if causal == 2 {
            (start + i) as i64
        } else {
            nk as i64 - nq as i64 + i as i64
        };
        let allowed = |j: usize| {
            let m = match mask_kind {
                1 => mask[i * nk + j],
                2 => !mask[i * nk + j],
                _ => true,
            };
            let km = match key_kind {
                1 => key_mask[j],
                2 => !key_mask[j],
                _ => true,
            };
            let c = causal == 0 || (j as i64) <= p;
            let win = window.is_none_or(|w| j as i64 > p - w as i64);
            m && km && c && win
        };
        // The library scores in f32: dot, times the scale, plus the bias.
        let raw = |j: usize| -> f64 {
            let dot: f64 = (0..dk)
                .map(|c| q[i * dk + c] as f64 * k[j * dk + c] as f64)
                .sum();
            dot * scale
        };
        if (0..nk).any(|j| allowed(j) && raw(j).abs() > 1e37) {
            // Scores near or past f32's range: an overflow to +∞ makes the row
            // NaN (documented, as in PyTorch; a bias of −∞ does not help,
            // ∞ − ∞ is NaN); nothing more to check.
            stat("score overflow");
            continue;
        }
        let s: Vec<f64> = (0..nk)
            .map(|j| {
                let b = if with_bias {
                    bias[i * nk + j] as f64
                } else {
                    0.0
                };
                if allowed(j) {
                    raw(j) + b
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect();
        let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let wrow = w.row(i).unwrap();
        let orow = out.row(i).unwrap();
        if m == f64::NEG_INFINITY {
            stat("fully masked row");
            assert!(
                wrow.iter().all(|&x| x == 0.0),
                "masked row weights {wrow:?}"
            );
            assert!(orow.iter().all(|&x| x == 0.0), "masked row output {orow:?}");
            continue;
        }
        let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = e.iter().sum();
        let sum: f64 = wrow.iter().map(|&x| x as f64).sum();
        assert!((sum - 1.0).abs() < 1e-5, "weights sum to {sum}");
        // The scores' own f32 rounding moves a weight by about ε·|score|.
        let smax = s
            .iter()
            .filter(|x| x.is_finite())
            .fold(0.0f64, |a, x| a.max(x.abs()));
        let tol = 1e-5 + 4e-7 * smax;
        for j in 0..nk {
            assert!((0.0..=1.0).contains(&wrow[j]));
            let want = e[j] / z;
            assert!(
                (wrow[j] as f64 - want).abs() <= tol,
                "w[{i},{j}] {} vs {want}",
                wrow[j]
            );
        }
        for c in 0..dv {
            let col = (0..nk).map(|j| v[j * dv + c]);
            let (lo, hi) = col.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), x| {
                (a.min(x), b.max(x))
            });
            let y = orow[c];
            let want: f64 = (0..nk).map(|j| wrow[j] as f64 * v[j * dv + c] as f64).sum();
            assert!(
                (y as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "out {y} vs {want}"
            );
            assert!(y >= lo - 1e-5 * lo.abs().max(1.0) && y <= hi + 1e-5 * hi.abs().max(1.0));
        }
    }
    // Scalar agrees.
    let (out_s, w_s) = sdpa_dyn_with::<Scalar, f32>(&qm, &km, &vm, &o).unwrap();
    for (a, b) in out_s.as_slice().iter().zip(out.as_slice()) {
        assert!(close(*a as f64, *b as f64, 1e-4), "Scalar {a} vs Simd {b}");
    }
    for (a, b) in w_s.as_slice().iter().zip(w.as_slice()) {
        assert!(
            close(*a as f64, *b as f64, 1e-4),
            "Scalar weight {a} vs Simd {b}"
        );
    }
    stat("checked");

    // The batched face: two batch entries of (heads, kv_heads) reading the same
    // data per head give the per-head result.
    let kvh = inp.range(1, 2);
    let heads = kvh * inp.range(1, 2);
    let shape = AttnShape {
        batch: 2,
        heads,
        kv_heads: kvh,
        nq,
        nk,
        dk,
        dv,
    };
    let rep =
        |x: &[f32], n: usize| -> Vec<f32> { (0..n).flat_map(|_| x.iter().copied()).collect() };
    let b = sdpa_batched_dyn(
        &rep(&q, 2 * heads),
        &rep(&k, 2 * kvh),
        &rep(&v, 2 * kvh),
        shape,
        &o,
    );
    let b = b.unwrap_or_else(|e| panic!("batched: {e:?}"));
    assert_eq!(b.len(), 2 * heads * nq * dv);
    for (x, y) in b.iter().zip(rep(out.as_slice(), 2 * heads)) {
        assert!(close(*x as f64, y as f64, 1e-5), "batched {x} vs {y}");
    }
    // A length that does not match the shape is an error.
    let short = sdpa_batched_dyn(&q, &k, &v, AttnShape { batch: 3, ..shape }, &o);
    if 3 * heads * nq * dk != q.len()
        || 3 * kvh * nk * dk != k.len()
        || 3 * kvh * nk * dv != v.len()
    {
        assert!(short.is_err());
    }
});
