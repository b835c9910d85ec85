//! LayerNorm, RMSNorm, BatchNorm and conv2d on arbitrary shapes.
//!
//! Norms: `Err` exactly for a bad eps (or momentum), otherwise outputs equal an
//! f64 evaluation of the formula (rows of zero variance included), in-place
//! equals out-of-place, Scalar agrees with Simd; BatchNorm training rejects a
//! single value per channel and updates the running statistics as PyTorch.
//! Conv2d: `Err` exactly when the shape cannot work (zero stride or dilation,
//! groups not dividing the channels, an empty output), otherwise the direct,
//! im2col and auto paths equal an f64 cross-correlation, and the backward pass
//! is the adjoint of the forward: ⟨dx, x⟩ = ⟨dy, y − b⟩ = ⟨dw, w⟩, dbias = Σ dy.
#![no_main]
// Index loops mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use constml::nn::{
    Conv2dShape, conv2d_auto_views, conv2d_backward_views, conv2d_im2col_backward_views,
    conv2d_im2col_scratch_len, conv2d_im2col_views, conv2d_views, conv2d_views_with,
};
use constml::norm::{
    BnShape, NormStats, RunningStats, batch_norm_train_views, layer_norm_inplace_views,
    layer_norm_views, layer_norm_views_with, rms_norm_views, rms_norm_views_with,
};
use constml::{Error, MatMut, MatRef, Scalar};
use constml_fuzz::{Input, stat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    match inp.u8() % 3 {
        0 => norms(&mut inp),
        1 => batch_norm(&mut inp),
        _ => conv(&mut inp),
    }
});

fn eps_of(inp: &mut Input) -> f32 {
    match inp.u8() % 6 {
        0 => inp.any_f32(),
        1 => f32::from_bits(inp.range(1, 0x0080_0000) as u32),
        2 => 1e-6,
        _ => 1e-5,
    }
}

fn norms(inp: &mut Input) {
    let n = inp.range(0, 5);
    let c = inp.range(0, 70);
    let scale = 2f32.powi(inp.range(0, 40) as i32 - 20);
    let offset = inp.small_f32() * 2f32.powi(inp.range(0, 20) as i32);
    let constant = inp.u8() < 30;
    let x: Vec<f32> = inp.vec(n * c, |i| {
        if constant {
            offset
        } else {
            offset + i.fine_f32() * scale
        }
    });
    let w: Option<Vec<f32>> = inp.bool().then(|| inp.vec(c, |i| i.small_f32()));
    let b: Option<Vec<f32>> = inp.bool().then(|| inp.vec(c, |i| i.small_f32()));
    let eps = eps_of(inp);
    let eps_ok = eps.is_finite() && eps > 0.0;
    let xm = MatRef::new(&x, n, c).unwrap();

    // LayerNorm.
    let mut y = vec![f32::NAN; n * c];
    let (mut mean, mut rstd) = (vec![0.0f32; n], vec![0.0f32; n]);
    let got = layer_norm_views(
        xm,
        MatMut::new(&mut y, n, c).unwrap(),
        w.as_deref(),
        b.as_deref(),
        eps,
        Some(NormStats::new(&mut mean, &mut rstd)),
    );
    if !eps_ok {
        assert!(
            matches!(got, Err(Error::InvalidParameter { .. })),
            "{got:?}"
        );
        stat("bad eps");
        return;
    }
    got.unwrap();
    let mut y2 = x.clone();
    layer_norm_inplace_views(
        MatMut::new(&mut y2, n, c).unwrap(),
        w.as_deref(),
        b.as_deref(),
        eps,
        None,
    )
    .unwrap();
    assert_eq!(y, y2, "in place differs");
    let mut ys = vec![0.0f32; n * c];
    layer_norm_views_with::<Scalar, f32>(
        xm,
        MatMut::new(&mut ys, n, c).unwrap(),
        w.as_deref(),
        b.as_deref(),
        eps,
        None,
    )
    .unwrap();
    let wmax = w
        .as_ref()
        .map_or(1.0, |w| w.iter().fold(0.0f32, |a, v| a.max(v.abs()))) as f64;
    for i in (0..n).filter(|_| c > 0) {
        let row: Vec<f64> = x[i * c..(i + 1) * c].iter().map(|&v| v as f64).collect();
        let mu = row.iter().sum::<f64>() / c as f64;
        let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / c as f64;
        let r = 1.0 / (var + eps as f64).sqrt();
        let xmax = row.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        // f32's mean carries ε·max|x| of error, magnified by r.
        let tol = 1e-4 + 2e-6 * xmax * r * wmax * (c as f64).sqrt();
        assert!(
            (mean[i] as f64 - mu).abs() <= 1e-5 * (1.0 + xmax),
            "mean {} vs {mu}",
            mean[i]
        );
        for j in 0..c {
            let want = (row[j] - mu) * r * w.as_ref().map_or(1.0, |w| w[j] as f64)
                + b.as_ref().map_or(0.0, |b| b[j] as f64);
            let got = y[i * c + j] as f64;
            assert!(
                (got - want).abs() <= tol * (1.0 + want.abs()),
                "LayerNorm y[{i},{j}] {got} vs {want}"
            );
            assert!(
                (ys[i * c + j] as f64 - got).abs() <= tol * (1.0 + want.abs()),
                "Scalar vs Simd"
            );
        }
    }
    stat("layer norm");

    // RMSNorm.
    let mut y = vec![f32::NAN; n * c];
    rms_norm_views(
        xm,
        MatMut::new(&mut y, n, c).unwrap(),
        w.as_deref(),
        eps,
        None,
    )
    .unwrap();
    let mut ys = vec![0.0f32; n * c];
    rms_norm_views_with::<Scalar, f32>(
        xm,
        MatMut::new(&mut ys, n, c).unwrap(),
        w.as_deref(),
        eps,
        None,
    )
    .unwrap();
    for i in 0..n {
        let row: Vec<f64> = x[i * c..(i + 1) * c].iter().map(|&v| v as f64).collect();
        let ms = row.iter().map(|v| v * v).sum::<f64>() / c as f64;
        let r = 1.0 / (ms + eps as f64).sqrt();
        for j in 0..c {
            let want = row[j] * r * w.as_ref().map_or(1.0, |w| w[j] as f64);
            let got = y[i * c + j] as f64;
            assert!(
                (got - want).abs() <= 1e-5 * (1.0 + want.abs()) * (c as f64).sqrt(),
                "RMSNorm {got} vs {want}"
            );
            assert!(
                (ys[i * c + j] as f64 - got).abs() <= 1e-5 * (1.0 + want.abs()) * (c as f64).sqrt()
            );
        }
    }
    stat("rms norm");
}

fn batch_norm(inp: &mut Input) {
    let shape = BnShape {
        n: inp.range(0, 4),
        c: inp.range(0, 4),
        l: inp.range(0, 20),
    };
    let (n, c, l) = (shape.n, shape.c, shape.l);
    let x: Vec<f32> = inp.vec(n * c * l, |i| i.fine_f32());
    let w: Option<Vec<f32>> = inp.bool().then(|| inp.vec(c, |i| i.small_f32()));
    let b: Option<Vec<f32>> = w.as_ref().map(|_| inp.vec(c, |i| i.small_f32()));
    let eps = eps_of(inp);
    let momentum = match inp.u8() % 5 {
        0 => None,
        1 => Some(inp.any_f32()),
        _ => Some(inp.u8() as f32 / 255.0),
    };
    let (mut rm, mut rv, mut batches) = (vec![0.5f32; c], vec![2.0f32; c], 3u64);
    let mut y = vec![f32::NAN; n * c * l];
    let got = batch_norm_train_views(
        &x,
        shape,
        &mut y,
        w.as_deref(),
        b.as_deref(),
        eps,
        momentum,
        Some(RunningStats {
            mean: &mut rm,
            var: &mut rv,
            batches: &mut batches,
        }),
        None,
    );
    let eps_ok = eps.is_finite() && eps > 0.0;
    // Any finite momentum is taken (PyTorch does not check it either).
    let mom_ok = momentum.is_none_or(|m| m.is_finite());
    if !eps_ok || !mom_ok || (c > 0 && n * l <= 1) {
        assert!(
            got.is_err(),
            "accepted eps {eps} momentum {momentum:?} shape {shape:?}"
        );
        assert!(rm.iter().all(|&v| v == 0.5) && rv.iter().all(|&v| v == 2.0) && batches == 3);
        stat("batch norm rejected");
        return;
    }
    got.unwrap_or_else(|e| panic!("{e:?} for {shape:?}"));
    if c == 0 {
        stat("batch norm without channels");
        return;
    }
    let m = n * l;
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|s| {
                x[(s * c + ch) * l..(s * c + ch + 1) * l]
                    .iter()
                    .map(|&v| v as f64)
            })
            .collect();
        let mu = vals.iter().sum::<f64>() / m as f64;
        let ss = vals.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>();
        let r = 1.0 / (ss / m as f64 + eps as f64).sqrt();
        for s in 0..n {
            for t in 0..l {
                let i = (s * c + ch) * l + t;
                let want = (x[i] as f64 - mu) * r * w.as_ref().map_or(1.0, |w| w[ch] as f64)
                    + b.as_ref().map_or(0.0, |b| b[ch] as f64);
                let tol = 1e-4 * (1.0 + want.abs()) + 1e-5 * 8.0 * r;
                assert!(
                    (y[i] as f64 - want).abs() <= tol,
                    "BatchNorm {} vs {want}",
                    y[i]
                );
            }
        }
        {
            // momentum None: the cumulative average, 1 / batches seen.
            let mo = momentum.map_or(1.0 / 4.0, |m| m as f64);
            let want_m = (1.0 - mo) * 0.5 + mo * mu;
            let want_v = (1.0 - mo) * 2.0 + mo * ss / (m - 1) as f64;
            if mo.abs() > 1e3 {
                // Any finite momentum is taken, but a huge one overflows f32
                // on the way ((1 − m)·v + m·σ² with m·σ² past f32::MAX): that
                // is propagation, not a rule to check.
                continue;
            }
            let tol = 1e-5 * (1.0 + mo.abs()) * (1.0 + want_m.abs() + want_v.abs());
            assert!(
                (rm[ch] as f64 - want_m).abs() <= tol,
                "running mean {} vs {want_m}",
                rm[ch]
            );
            assert!(
                (rv[ch] as f64 - want_v).abs() <= 10.0 * tol,
                "running var {} vs {want_v}",
                rv[ch]
            );
        }
    }
    assert_eq!(batches, 4);
    stat("batch norm");
}

fn conv(inp: &mut Input) {
    let groups = inp.range(0, 3);
    let g = groups.max(1);
    let shape = Conv2dShape {
        n: inp.range(0, 2),
        c_in: g * inp.range(1, 2) + if inp.u8() < 10 { 1 } else { 0 },
        h: inp.range(0, 7),
        w: inp.range(0, 7),
        c_out: g * inp.range(1, 3),
        kh: inp.range(0, 4),
        kw: inp.range(1, 4),
        stride: (inp.range(0, 3), inp.range(1, 3)),
        padding: (inp.range(0, 2), inp.range(0, 2)),
        dilation: (inp.range(1, 2), inp.range(0, 2)),
        groups,
    };
    let s = shape;
    let (cig, cog) = (s.c_in / g, s.c_out / g);
    let out_len = |len: usize, k: usize, st: usize, p: usize, d: usize| -> Option<usize> {
        if k == 0 || st == 0 || d == 0 || len + 2 * p < d * (k - 1) + 1 {
            return None;
        }
        Some((len + 2 * p - d * (k - 1) - 1) / st + 1)
    };
    let want_out = match (
        out_len(s.h, s.kh, s.stride.0, s.padding.0, s.dilation.0),
        out_len(s.w, s.kw, s.stride.1, s.padding.1, s.dilation.1),
    ) {
        (Some(a), Some(b)) if groups > 0 && s.c_in.is_multiple_of(g) => Some((a, b)),
        _ => None,
    };
    let got = shape.output();
    let Some((oh, ow)) = want_out else {
        assert!(got.is_err(), "{shape:?} accepted: {got:?}");
        let mut y = vec![0.0f32; 8];
        assert!(conv2d_views(&[0.0; 8], &shape, &[0.0; 8], None, &mut y).is_err());
        stat("conv rejected");
        return;
    };
    assert_eq!(got.unwrap(), (oh, ow), "{shape:?}");
    let x: Vec<f32> = inp.vec(s.n * s.c_in * s.h * s.w, |i| i.small_f32());
    let wt: Vec<f32> = inp.vec(s.c_out * cig * s.kh * s.kw, |i| i.small_f32());
    let bias: Option<Vec<f32>> = inp.bool().then(|| inp.vec(s.c_out, |i| i.small_f32()));
    let ylen = s.n * s.c_out * oh * ow;

    // f64 cross-correlation.
    let mut want = vec![0.0f64; ylen];
    for b in 0..s.n {
        for co in 0..s.c_out {
            let grp = co / cog;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.as_ref().map_or(0.0, |b| b[co] as f64);
                    for ci in 0..cig {
                        let cin = grp * cig + ci;
                        for ky in 0..s.kh {
                            for kx in 0..s.kw {
                                let iy = (oy * s.stride.0 + ky * s.dilation.0) as i64
                                    - s.padding.0 as i64;
                                let ix = (ox * s.stride.1 + kx * s.dilation.1) as i64
                                    - s.padding.1 as i64;
                                if iy < 0 || ix < 0 || iy >= s.h as i64 || ix >= s.w as i64 {
                                    continue;
                                }
                                let xv =
                                    x[((b * s.c_in + cin) * s.h + iy as usize) * s.w + ix as usize];
                                let wv = wt[((co * cig + ci) * s.kh + ky) * s.kw + kx];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    want[((b * s.c_out + co) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    let mut scratch = vec![0.0f32; conv2d_im2col_scratch_len(&shape)];
    // Products of 1/16-grid values are exact in f32 up to about 2^20 in sum.
    let check = |y: &[f32], what: &str| {
        for (a, b) in y.iter().zip(&want) {
            assert!(
                (*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{what}: {a} vs {b} ({shape:?})"
            );
        }
    };
    let mut y = vec![f32::NAN; ylen];
    conv2d_views(&x, &shape, &wt, bias.as_deref(), &mut y).unwrap();
    check(&y, "direct");
    let mut y2 = vec![f32::NAN; ylen];
    conv2d_im2col_views(&x, &shape, &wt, bias.as_deref(), &mut y2, &mut scratch).unwrap();
    check(&y2, "im2col");
    let mut y3 = vec![f32::NAN; ylen];
    conv2d_auto_views(&x, &shape, &wt, bias.as_deref(), &mut y3, &mut scratch).unwrap();
    check(&y3, "auto");
    let mut y4 = vec![f32::NAN; ylen];
    conv2d_views_with::<Scalar, f32>(&x, &shape, &wt, bias.as_deref(), &mut y4).unwrap();
    check(&y4, "scalar");
    // A wrong output length is an error.
    assert!(conv2d_views(&x, &shape, &wt, bias.as_deref(), &mut vec![0.0; ylen + 1]).is_err());

    // Backward: the adjoint identities.
    let dy: Vec<f32> = inp.vec(ylen, |i| i.small_f32());
    // dx is written; dweight and dbias are accumulated into (PyTorch's .grad).
    let (mut dx, mut dw, mut db) = (
        vec![f32::NAN; x.len()],
        vec![0.0f32; wt.len()],
        vec![0.0f32; s.c_out],
    );
    let (mut dx2, mut dw2, mut db2) = (dx.clone(), dw.clone(), db.clone());
    conv2d_backward_views(
        &x,
        &shape,
        &wt,
        &dy,
        Some(&mut dx),
        Some(&mut dw),
        Some(&mut db),
    )
    .unwrap();
    conv2d_im2col_backward_views(
        &x,
        &shape,
        &wt,
        &dy,
        Some(&mut dx2),
        Some(&mut dw2),
        Some(&mut db2),
        &mut scratch,
    )
    .unwrap();
    let dot = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| *p as f64 * *q as f64)
            .sum::<f64>()
    };
    let y_nb: Vec<f64> = (0..ylen)
        .map(|i| {
            want[i]
                - bias
                    .as_ref()
                    .map_or(0.0, |b| b[(i / (oh * ow)) % s.c_out] as f64)
        })
        .collect();
    let ydy: f64 = y_nb.iter().zip(&dy).map(|(a, b)| a * *b as f64).sum();
    let mag: f64 = 1.0
        + y_nb
            .iter()
            .zip(&dy)
            .map(|(a, b)| (a * *b as f64).abs())
            .sum::<f64>();
    for (what, dxv, dwv, dbv) in [("direct", &dx, &dw, &db), ("im2col", &dx2, &dw2, &db2)] {
        assert!(
            (dot(dxv, &x) - ydy).abs() <= 1e-5 * mag,
            "{what}: <dx, x> {} vs {ydy}",
            dot(dxv, &x)
        );
        assert!(
            (dot(dwv, &wt) - ydy).abs() <= 1e-5 * mag,
            "{what}: <dw, w> {} vs {ydy}",
            dot(dwv, &wt)
        );
        for co in 0..s.c_out {
            let want_b: f64 = (0..s.n)
                .flat_map(|b| dy[(b * s.c_out + co) * oh * ow..][..oh * ow].iter())
                .map(|&v| v as f64)
                .sum();
            assert!(
                (dbv[co] as f64 - want_b).abs() <= 1e-5 * (1.0 + want_b.abs()),
                "{what}: dbias"
            );
        }
    }
    stat("conv checked");
}
