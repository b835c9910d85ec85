//! Position encodings against reference vectors (tests/reference/gen_position.py
//! → tests/reference/position.bin): exact values (mpmath), PyTorch autograd,
//! and Hugging Face transformers' own functions (T5 buckets, ALiBi slopes of
//! MPT and Bloom, the Llama / GPT-NeoX rotary recipe, M2M100's table).

mod common;

use common::{RefFile, assert_close, entry, for_each_backend_and_real, ref_tol, to_vec};
use constml::attention::{AttnOptions, MhaScratch, MhaWeights, MultiHeadAttention, WeightsOut};
use constml::position::*;
use constml::{Backend, MatMut, MatRef, Matrix, Real};

static BIN: &[u8] = include_bytes!("reference/position.bin");

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("position.bin is a CMLREF01 file")
}

fn load<T: Real>(name: &str) -> Vec<T> {
    to_vec(&entry(&file(), name))
}

fn ints(name: &str) -> Vec<usize> {
    let e = entry(&file(), name);
    (0..e.len()).map(|i| e.get(i) as usize).collect()
}

fn text(name: &str) -> &'static str {
    entry(&file(), name).text()
}

fn tag<T: Real>() -> &'static str {
    if T::BYTES == 4 { "f32" } else { "f64" }
}

fn arr2<T: Real, const R: usize, const C: usize>(name: &str) -> [[T; C]; R] {
    let v = load::<T>(name);
    assert_eq!(v.len(), R * C, "{name}");
    core::array::from_fn(|i| core::array::from_fn(|j| v[i * C + j]))
}

fn arr3<T: Real, const A: usize, const B: usize, const C: usize>(name: &str) -> [[[T; C]; B]; A] {
    let v = load::<T>(name);
    assert_eq!(v.len(), A * B * C, "{name}");
    core::array::from_fn(|a| {
        core::array::from_fn(|b| core::array::from_fn(|c| v[(a * B + b) * C + c]))
    })
}

/// `|got − want| ≤ tol` element-wise, `want` in f64 (exact references).
#[track_caller]
fn within<T: Real>(what: &str, got: &[T], want: &[f64], tol: impl Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g.as_f64() - w).abs();
        assert!(
            err <= tol(i),
            "{what}[{i}]: got {:e}, want {w:e}, error {err:e} > {:e}",
            g.as_f64(),
            tol(i)
        );
    }
}

// ------------------------------------------------------------------ sinusoidal

/// Exact-reference tolerance for a table value at position `p`: one rounding
/// to f32 (the issue asks for 1e-6 up to 10⁵; we hold 1e-7), or the f64
/// angle error (about 1e-16 relative, times the angle).
fn sin_tol<T: Real>(p: usize) -> f64 {
    if T::BYTES == 4 {
        1e-7
    } else {
        1e-15 + 1e-15 * p as f64
    }
}

fn sinusoidal_exact<T: Real>() {
    let positions = ints("sin/positions");
    for (layout, name, widths) in [
        (
            SinusoidalLayout::Interleaved,
            "inter",
            &[1usize, 2, 3, 7, 8, 64, 65][..],
        ),
        (
            SinusoidalLayout::Halves,
            "halves",
            &[4, 5, 8, 9, 64, 65][..],
        ),
    ] {
        let pe = Sinusoidal::new(layout);
        for &d in widths {
            let want = load::<f64>(&format!("sin/{name}/d{d}"));
            for (r, &p) in positions.iter().enumerate() {
                let mut row = vec![T::NAN; d];
                pe.table_views(p, MatMut::new(&mut row, 1, d).unwrap())
                    .unwrap();
                let what = format!("sinusoidal {name} d{d} p{p} {}", tag::<T>());
                within(&what, &row, &want[r * d..(r + 1) * d], |_| sin_tol::<T>(p));
                // `value` is the same function in f64.
                for (c, &w) in want[r * d..(r + 1) * d].iter().enumerate() {
                    assert!(
                        (pe.value(p, c, d).unwrap() - w).abs() <= sin_tol::<f64>(p),
                        "{what} value({c})"
                    );
                }
            }
        }
    }
}

#[test]
fn sinusoidal_matches_exact_values() {
    sinusoidal_exact::<f32>();
    sinusoidal_exact::<f64>();
}

/// Hugging Face M2M100 builds its table in f32 arithmetic; it agrees with
/// ours to 1e-4 at positions up to 1024 (it drifts by ~4e-5 at 1024).
#[test]
fn sinusoidal_halves_matches_m2m100_up_to_1024() {
    let positions = ints("sin/m2m100/positions");
    let pe = Sinusoidal::new(SinusoidalLayout::Halves);
    for d in [8usize, 64, 65] {
        let want = load::<f32>(&format!("sin/m2m100/d{d}"));
        let got = pe.table_dyn::<f32>(0, 1025, d).unwrap();
        for (r, &p) in positions.iter().enumerate() {
            let g = got.row(p).unwrap();
            assert_close(
                &format!("m2m100 d{d} p{p}"),
                g,
                &want[r * d..(r + 1) * d],
                0.0,
                1e-4,
            );
        }
    }
}

/// The const face over consecutive positions equals the per-row values, and
/// `add` at an offset equals adding the table, bit for bit.
#[test]
fn sinusoidal_faces_agree() {
    for layout in [SinusoidalLayout::Interleaved, SinusoidalLayout::Halves] {
        let pe = Sinusoidal::new(layout);
        let mut t = [[0.0f32; 9]; 5];
        pe.table(4095, &mut t).unwrap();
        let dynt = pe.table_dyn::<f32>(4095, 5, 9).unwrap();
        assert_eq!(t.as_flattened(), dynt.as_slice());
        let mut x = [[0.25f32; 9]; 5];
        pe.add(4095, &mut x).unwrap();
        for (xr, tr) in x.iter().zip(&t) {
            for (&a, &b) in xr.iter().zip(tr) {
                assert_eq!(a, 0.25 + b);
            }
        }
    }
}

// ------------------------------------------------------------------ learned

fn learned_case<B: Backend, T: Real>() {
    let table = arr2::<T, 6, 5>("learned/table");
    let pos = ints("learned/positions");
    let positions: [usize; 7] = core::array::from_fn(|i| pos[i]);
    let mut x = arr2::<T, 7, 5>("learned/x");
    let dy = arr2::<T, 7, 5>("learned/dy");
    let t = tag::<T>();
    let (r, a) = ref_tol::<T>();
    let what = format!("learned {} {t}", B::NAME);
    constml::position::learned_add_at_views_with::<B, T>(
        MatRef::from_array(&table),
        &positions,
        MatMut::from_array(&mut x),
    )
    .unwrap();
    assert_close(
        &format!("{what} y"),
        x.as_flattened(),
        &load::<T>(&format!("learned/y/{t}")),
        r,
        a,
    );
    let mut grad = [[T::ZERO; 5]; 6];
    learned_backward_at_views_with::<B, T>(
        &positions,
        MatRef::from_array(&dy),
        MatMut::from_array(&mut grad),
    )
    .unwrap();
    assert_close(
        &format!("{what} grad"),
        grad.as_flattened(),
        &load::<T>(&format!("learned/grad/{t}")),
        r,
        a,
    );
    let mut owned = LearnedPositions::<T, 6, 5, [[T; 5]; 6]>::new(table);
    owned.sgd_step(&grad, T::from_f64(0.1)).unwrap();
    assert_close(
        &format!("{what} sgd"),
        owned.table().as_flattened(),
        &load::<T>(&format!("learned/updated/{t}")),
        r,
        a,
    );

    // The runtime face, the same sequence.
    let mut d = LearnedPositionsDyn::<T, B>::new(
        Matrix::from_vec(6, 5, table.as_flattened().to_vec()).unwrap(),
    )
    .unwrap();
    let mut xm = Matrix::from_vec(7, 5, load::<T>("learned/x")).unwrap();
    d.forward_at(&positions, &mut xm).unwrap();
    assert_eq!(xm.as_slice(), x.as_flattened());
    d.backward_at(
        &positions,
        &Matrix::from_vec(7, 5, dy.as_flattened().to_vec()).unwrap(),
    )
    .unwrap();
    assert_eq!(d.grad().as_slice(), grad.as_flattened());
    d.sgd_step(T::from_f64(0.1)).unwrap();
    // The same step through the views face on the same backend gives the same
    // bits (the const face above always runs on Simd, whose fused multiply-add
    // can differ from Scalar's in the last bit on FMA builds: NEON, AVX2).
    let mut same = table.as_flattened().to_vec();
    learned_sgd_step_views_with::<B, T>(
        MatMut::new(&mut same, 6, 5).unwrap(),
        MatRef::new(grad.as_flattened(), 6, 5).unwrap(),
        T::from_f64(0.1),
    )
    .unwrap();
    assert_eq!(d.table().as_slice(), &same[..]);
}

#[test]
fn learned_positions_match_autograd() {
    for_each_backend_and_real!(learned_case);
}

// ------------------------------------------------------------------ T5

#[test]
fn t5_buckets_match_hugging_face_over_1000() {
    let names: Vec<&str> = text("t5/names").split(',').collect();
    let configs = ints("t5/configs");
    assert_eq!(names.len() * 3, configs.len());
    for (k, name) in names.iter().enumerate() {
        let (bi, nb, md) = (configs[3 * k] != 0, configs[3 * k + 1], configs[3 * k + 2]);
        let b = T5Buckets::new(bi, nb, md).unwrap();
        let want = ints(&format!("t5/{name}"));
        assert_eq!(want.len(), 2001);
        for (i, &w) in want.iter().enumerate() {
            let rel = i as isize - 1000;
            assert_eq!(b.bucket_of(rel), w, "{name}: relative position {rel}");
            // The same through absolute positions, far from zero.
            let (q, key) = (5000usize, (5000 + rel) as usize);
            assert_eq!(b.bucket(q, key), w, "{name}: query {q}, key {key}");
        }
    }
}

fn t5_bias_case(prefix: &str, bidirectional: bool) {
    let weight = arr2::<f32, 32, 3>(&format!("{prefix}/weight"));
    let bias = T5RelativeBias::from_array(T5Buckets::new(bidirectional, 32, 128).unwrap(), &weight)
        .unwrap();
    let want = load::<f32>(&format!("{prefix}/out"));
    let mut out = vec![f32::NAN; 3 * 12 * 300];
    bias.fill_views(0, 0, MatMut::new(&mut out, 36, 300).unwrap())
        .unwrap();
    assert_eq!(out, want, "{prefix}: compute_bias(12, 300)");
    // Through the ScoreBias hook, value by value.
    use constml::attention::ScoreBias;
    for h in 0..3 {
        for i in 0..12 {
            for j in 0..300 {
                assert_eq!(bias.bias(h, i, j), want[(h * 12 + i) * 300 + j]);
            }
        }
    }
}

#[test]
fn t5_bias_matches_compute_bias() {
    t5_bias_case("t5_bias", true);
    t5_bias_case("t5_bias_causal", false);
    // The cached step: one query at position 299 against keys 0..300.
    let weight = arr2::<f32, 32, 3>("t5_bias_causal/weight");
    let bias =
        T5RelativeBias::from_array(T5Buckets::new(false, 32, 128).unwrap(), &weight).unwrap();
    let mut out = vec![f32::NAN; 3 * 300];
    bias.fill_views(299, 0, MatMut::new(&mut out, 3, 300).unwrap())
        .unwrap();
    assert_eq!(out, load::<f32>("t5_bias_causal/out_step"));
}

// ------------------------------------------------------------------ ALiBi

const ALIBI_HEADS: [usize; 18] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 32,
];

fn ulps(a: f32, b: f32) -> u32 {
    a.to_bits().abs_diff(b.to_bits())
}

#[test]
fn alibi_slopes_match_exact_mpt_and_bloom() {
    for n in ALIBI_HEADS {
        let exact = load::<f64>(&format!("alibi/exact/{n}"));
        let mpt = load::<f32>(&format!("alibi/mpt/{n}"));
        let bloom = load::<f32>(&format!("alibi/bloom/{n}"));
        let mut s32 = vec![0.0f32; n];
        alibi_slopes_into(&mut s32, 8.0).unwrap();
        let mut s64 = vec![0.0f64; n];
        alibi_slopes_into(&mut s64, 8.0).unwrap();
        for h in 0..n {
            // f32: the exact slope rounded to nearest, equal to MPT's.
            assert_eq!(
                s32[h], exact[h] as f32,
                "{n} heads, head {h}: exact rounded"
            );
            assert_eq!(s32[h], mpt[h], "{n} heads, head {h}: MPT");
            assert!(
                ulps(s32[h], bloom[h]) <= 8,
                "{n} heads, head {h}: Bloom {} vs {}",
                bloom[h],
                s32[h]
            );
            // f64: within one ulp of the exact value.
            assert!(
                (s64[h] - exact[h]).abs() <= exact[h] * f64::EPSILON,
                "{n} heads, head {h}: f64"
            );
        }
    }
    let c: [f32; 12] = alibi_slopes();
    assert_eq!(&c[..], &load::<f32>("alibi/mpt/12")[..]);
}

#[test]
fn alibi_bloom_bias_with_left_padding() {
    let mask = ints("alibi_bloom_pad/mask");
    let want = load::<f32>("alibi_bloom_pad/out"); // (3, 6, 7)
    let slopes: [f32; 6] = alibi_slopes();
    for b in 0..3 {
        let row = &mask[b * 7..(b + 1) * 7];
        let first = row.iter().position(|&m| m != 0).unwrap();
        assert!(row[first..].iter().all(|&m| m != 0), "left padding only");
        let alibi = Alibi::new(&slopes, AlibiForm::Bloom { first }).unwrap();
        // One query (the last token) against the 7 keys, per head.
        let mut out = [0.0f32; 6 * 7];
        alibi
            .fill_views(6, 0, MatMut::new(&mut out, 6, 7).unwrap())
            .unwrap();
        // Our slopes are exact; Bloom's are within 8 ulp.
        assert_close(
            &format!("Bloom bias batch {b}"),
            &out,
            &want[b * 42..(b + 1) * 42],
            8.0 * f32::EPSILON as f64,
            0.0,
        );
    }
}

// ------------------------------------------------------------------ RoPE (exact)

fn rope_config(params: &[f64]) -> (usize, usize, RopeConfig) {
    let (d, r) = (params[0] as usize, params[1] as usize);
    let layout = if params[5] == 0.0 {
        RopeLayout::Interleaved
    } else {
        RopeLayout::HalfSplit
    };
    let scaling = match params[3] as usize {
        0 => RopeScaling::None,
        1 => RopeScaling::Linear(params[4]),
        _ => RopeScaling::Ntk(params[4]),
    };
    (
        d,
        r,
        RopeConfig::new(layout).theta(params[2]).scaling(scaling),
    )
}

/// Exact-reference tolerance for a rotated value at position `p` of a row with
/// largest magnitude `m`: f32 — one rounding of each coefficient and of the
/// result (the issue asks for 1e-5·|q| at 10⁶; we hold 1e-6); f64 — the f64
/// angle error, about 1e-15·p radians.
fn rope_tol<T: Real>(p: usize, m: f64) -> f64 {
    if T::BYTES == 4 {
        1e-6 * m
    } else {
        (1e-14 + 2e-15 * p as f64) * m
    }
}

fn rope_exact_case<B: Backend, T: Real>() {
    for case in text("rope/cases").split(',') {
        let params = load::<f64>(&format!("rope/{case}/params"));
        let (d, r, cfg) = rope_config(&params);
        let pos = ints(&format!("rope/{case}/pos"));
        let x = load::<T>(&format!("rope/{case}/x"));
        let want = load::<f64>(&format!("rope/{case}/out"));
        let rope = RopeDyn::<T, B>::new(cfg, r).unwrap();
        let table = RopeDyn::<T, B>::new(cfg, r)
            .unwrap()
            .with_table(101, BeyondTable::Compute)
            .unwrap();
        for (i, &p) in pos.iter().enumerate() {
            let row = &x[i * d..(i + 1) * d];
            let m = row.iter().map(|v| v.as_f64().abs()).fold(0.0, f64::max);
            let what = format!("rope {case} p{p} {} {}", B::NAME, tag::<T>());
            let mut got = row.to_vec();
            rope.rotate(p, &mut got).unwrap();
            within(&what, &got, &want[i * d..(i + 1) * d], |_| {
                rope_tol::<T>(p, m)
            });
            // The table path (positions 0..=100 in the table, past it computed)
            // gives the same bits.
            let mut via_table = row.to_vec();
            table.rotate(p, &mut via_table).unwrap();
            assert_eq!(got, via_table, "{what}: table vs on the fly");
            // The rows path (two heads of this vector) too.
            let mut two = [row, row].concat();
            rope.rotate_rows(p, MatMut::new(&mut two, 1, 2 * d).unwrap(), 2)
                .unwrap();
            assert_eq!(&two[..d], &got[..], "{what}: rows");
            assert_eq!(&two[d..], &got[..], "{what}: rows, head 1");
        }
    }
}

#[test]
fn rope_matches_exact_rotation_up_to_1e6() {
    for_each_backend_and_real!(rope_exact_case);
}

/// The const-generic faces on the reference cases with R = 64 and 16.
fn rope_const_case<const R: usize, const D: usize>(case: &str) {
    let params = load::<f64>(&format!("rope/{case}/params"));
    let (d, r, cfg) = rope_config(&params);
    assert_eq!((d, r), (D, R));
    let pos = ints(&format!("rope/{case}/pos"));
    let x = load::<f32>(&format!("rope/{case}/x"));
    let want = load::<f64>(&format!("rope/{case}/out"));
    let rope = Rope::<f32, R>::new(cfg).unwrap();
    let (mut cos, mut sin) = ([[0.0f32; R]; 8], [[0.0f32; R]; 8]);
    let table = RopeTable::new(rope, &mut cos, &mut sin, BeyondTable::Compute);
    for (i, &p) in pos.iter().enumerate() {
        let row: [f32; D] = core::array::from_fn(|j| x[i * D + j]);
        let m = row.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
        let mut a = [[row]];
        rope.rotate_heads(p, &mut a).unwrap();
        within(
            &format!("const rope {case} p{p}"),
            &a[0][0],
            &want[i * D..(i + 1) * D],
            |_| rope_tol::<f32>(p, m),
        );
        let mut b = row;
        table.rotate(p, &mut b).unwrap();
        assert_eq!(a[0][0], b, "const rope {case} p{p}: table");
    }
}

#[test]
fn rope_const_faces_match_exact_rotation() {
    rope_const_case::<64, 64>("inter_d64");
    rope_const_case::<64, 64>("half_d64");
    rope_const_case::<16, 48>("inter_partial");
    rope_const_case::<32, 64>("half_partial");
}

// ------------------------------------------------------------------ RoPE (HF recipe)

fn rope_hf_case<B: Backend, T: Real>() {
    for case in ["llama_d64", "llama_linear", "neox_partial"] {
        let params = load::<f64>(&format!("rope_hf/{case}/params"));
        let (d, r) = (params[0] as usize, params[1] as usize);
        let scaling = if params[3] == 1.0 {
            RopeScaling::Linear(params[4])
        } else {
            RopeScaling::None
        };
        let cfg = RopeConfig::new(RopeLayout::HalfSplit)
            .theta(params[2])
            .scaling(scaling)
            .recipe(RopeRecipe::HuggingFace);
        let rope = RopeDyn::<T, B>::new(cfg, r).unwrap();
        let pos = ints(&format!("rope_hf/{case}/pos"));
        let x = load::<T>(&format!("rope_hf/{case}/x"));
        let cos = load::<T>(&format!("rope_hf/{case}/cos"));
        let sin = load::<T>(&format!("rope_hf/{case}/sin"));
        let out = load::<T>(&format!("rope_hf/{case}/out"));
        let exact = load::<f64>(&format!("rope_hf/{case}/exact"));
        let inv = load::<f32>(&format!("rope_hf/{case}/inv_freq"));
        let exact_rope = RopeDyn::<T, B>::new(cfg.recipe(RopeRecipe::Exact), r).unwrap();
        for (i, &p) in pos.iter().enumerate() {
            let what = format!("rope_hf {case} p{p} {} {}", B::NAME, tag::<T>());
            // Its frequencies are f32 powers; ours are correctly rounded, and
            // PyTorch's vectorised powf is within an ulp of that: columns whose
            // frequency differs in the last bit are skipped below (at most 2).
            let same: Vec<bool> = rope
                .freqs()
                .iter()
                .zip(&inv)
                .map(|(&a, &b)| a as f32 == b)
                .collect();
            let differ = same.iter().filter(|&&s| !s).count();
            assert!(
                differ <= 2,
                "{what}: {differ} frequencies differ from Hugging Face's"
            );
            // Pair j of the half-split layout is in columns j and j + R/2.
            let col_ok = |c: usize| c >= r || same[c % (r / 2)];
            // Its cos/sin tensors: the same f32 angles (a different angle would
            // be off by ~1e-2 at p = 10^5); each cosine and sine within one
            // rounding (ours are correctly rounded, PyTorch's vectorised f32
            // cos/sin can be 1 ulp off).
            let (c, s) = rope.coefficients(p);
            let pick = |v: &[T]| -> Vec<T> {
                v.iter()
                    .enumerate()
                    .filter(|(c, _)| col_ok(*c))
                    .map(|(_, &x)| x)
                    .collect()
            };
            let (hc, hs) = (&cos[i * r..(i + 1) * r], &sin[i * r..(i + 1) * r]);
            assert_close(
                &format!("{what}: cos"),
                &pick(&c),
                &pick(hc),
                0.0,
                f32::EPSILON as f64,
            );
            assert_close(
                &format!("{what}: sin"),
                &pick(&s),
                &pick(hs),
                0.0,
                f32::EPSILON as f64,
            );
            // Its output, to the last bits (it rounds q·cos and rotate_half(q)·sin
            // separately; we may fuse).
            let row = &x[i * d..(i + 1) * d];
            let m = row.iter().map(|v| v.as_f64().abs()).fold(0.0, f64::max);
            let mut got = row.to_vec();
            rope.rotate(p, &mut got).unwrap();
            let want_out = &out[i * d..(i + 1) * d];
            assert_close(
                &what,
                &pick(&got),
                &pick(want_out),
                0.0,
                4.0 * f32::EPSILON as f64 * m,
            );
            // The exact recipe is closer to the exact rotation than HF's at every
            // position past the first few.
            let mut ex = row.to_vec();
            exact_rope.rotate(p, &mut ex).unwrap();
            within(
                &format!("{what}: exact recipe"),
                &ex,
                &exact[i * d..(i + 1) * d],
                |_| rope_tol::<T>(p, m),
            );
        }
    }
}

#[test]
fn rope_hugging_face_recipe_matches_its_angles() {
    for_each_backend_and_real!(rope_hf_case);
}

// ------------------------------------------------------------------ Shaw layer

fn shaw_layer_case<B: Backend, T: Real>() {
    let x = arr2::<T, 6, 8>("shaw_layer/x");
    let (wq, wk, wv) = (
        arr3::<T, 2, 4, 8>("shaw_layer/wq"),
        arr3::<T, 2, 4, 8>("shaw_layer/wk"),
        arr3::<T, 2, 4, 8>("shaw_layer/wv"),
    );
    let (bq, bk, bv) = (
        arr2::<T, 2, 4>("shaw_layer/bq"),
        arr2::<T, 2, 4>("shaw_layer/bk"),
        arr2::<T, 2, 4>("shaw_layer/bv"),
    );
    let wo = arr3::<T, 8, 2, 4>("shaw_layer/wo");
    let bo: [T; 8] = arr2::<T, 1, 8>("shaw_layer/bo")[0];
    let ak = arr2::<T, 5, 4>("shaw_layer/ak");
    let av = arr2::<T, 5, 4>("shaw_layer/av");
    let shaw = ShawRelative::from_arrays(Some(&ak), Some(&av));
    let layer = MultiHeadAttention::<T, 2, 8, 8, 4, 4, 8, B>::new(MhaWeights {
        w_q: &wq,
        b_q: Some(&bq),
        w_k: &wk,
        b_k: Some(&bk),
        w_v: &wv,
        b_v: Some(&bv),
        w_o: &wo,
        b_o: Some(&bo),
    });
    let (r, a) = ref_tol::<T>();
    for (opts, name) in [
        (AttnOptions::new().relative(&shaw), "out"),
        (AttnOptions::new().causal().relative(&shaw), "out_causal"),
    ] {
        let mut out = [[T::NAN; 8]; 6];
        let mut scratch = MhaScratch::new();
        layer
            .forward(&x, &x, &x, &mut out, &mut scratch, WeightsOut::None, &opts)
            .unwrap();
        let want = load::<T>(&format!("shaw_layer/{name}/{}", tag::<T>()));
        assert_close(
            &format!("Shaw layer {name} {} {}", B::NAME, tag::<T>()),
            out.as_flattened(),
            &want,
            r,
            a,
        );
    }
}

#[test]
fn shaw_layer_matches_reference() {
    for_each_backend_and_real!(shaw_layer_case);
}
