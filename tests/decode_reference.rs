//! Decoding against Hugging Face (vectors from tests/reference/gen_decode.py):
//!
//! * each logits processor and the sampler pipeline against Hugging Face's logits
//!   warpers, alone and chained (tie-free logits, every top-p / min-p case away
//!   from its boundary);
//! * sampling statistics: many seeded draws from the sampler match the filtered
//!   distribution that Hugging Face's warper chain gives (float64 softmax of the
//!   processed logits) by a chi-square test, and the same counts are rejected
//!   against the unfiltered distribution (so the test can fail).

mod common;

use common::{RefFile, assert_close, entry, ref_tol, to_vec};
use constml::Real;
use constml::decode::{
    Sampler, SamplerScratch, SelectScratch, min_p, sample_probs, temperature, top_k, top_p,
};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

static BIN: &[u8] = include_bytes!("reference/decode.bin");
/// Vocabulary of the processor and pipeline vectors.
const V: usize = 257;
/// Vocabulary of the chi-square vectors.
const CV: usize = 16;

/// `#[test]` functions `$f32` and `$f64` running `$check::<f32>()` and
/// `$check::<f64>()`.
macro_rules! f32_and_f64 {
    ($check:ident: $f32:ident, $f64:ident) => {
        #[test]
        fn $f32() {
            $check::<f32>();
        }
        #[test]
        fn $f64() {
            $check::<f64>();
        }
    };
}

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("decode.bin is a CMLREF01 file")
}

fn suffix<T: Real>() -> &'static str {
    if T::BYTES == 4 { "f32" } else { "f64" }
}

/// Row `r` of a (rows, V) entry as an array.
fn row<T: Real>(all: &[T], r: usize) -> [T; V] {
    all[r * V..(r + 1) * V].try_into().unwrap()
}

fn kept<T: Real>(x: &[T]) -> Vec<bool> {
    x.iter().map(|v| v.is_finite()).collect()
}

/// A sampler from an encoded (temperature, top_k, top_p, min_p) row; NaN / −1 = unset.
fn sampler_of<T: Real>(c: &[f64]) -> Sampler<T> {
    let opt = |x: f64| (!x.is_nan()).then(|| T::from_f64(x));
    Sampler {
        temperature: opt(c[0]),
        top_k: (c[1] >= 0.0).then_some(c[1] as usize),
        top_p: opt(c[2]),
        min_p: opt(c[3]),
    }
}

/// The `meta` entry names the generator; the library versions it records are
/// printed, never checked (a regenerated file may come from other versions).
#[test]
fn meta_names_the_reference() {
    let meta = entry(&file(), "meta").text();
    println!("decode.bin meta: {meta}");
    assert!(meta.contains("gen_decode.py"), "{meta}");
}

// ------------------------------------------------------------------ processors

fn check_temperature<T: Real>() {
    let f = file();
    let x: Vec<T> = to_vec(&entry(&f, "proc.x"));
    let ts: Vec<T> = to_vec(&entry(&f, "proc.t"));
    let want: Vec<T> = to_vec(&entry(&f, &format!("proc.temperature.{}", suffix::<T>())));
    let rows = x.len() / V;
    let (rt, at) = ref_tol::<T>();
    for (ti, &t) in ts.iter().enumerate() {
        for r in 0..rows {
            let mut a = row(&x, r);
            temperature(&mut a, t).unwrap();
            let w = row(&want, ti * rows + r);
            assert_close(&format!("temperature t={t} row {r}"), &a, &w, rt, at);
        }
    }
}

f32_and_f64!(check_temperature: temperature_matches_hf_f32, temperature_matches_hf_f64);

/// Applies a filter to every (parameter, row) and compares the kept tokens with
/// Hugging Face's mask; survivors must keep their logit unchanged.
fn check_filter<T: Real, P: Real>(name: &str, params: &str, mut apply: impl FnMut(&mut [T; V], P)) {
    let f = file();
    let x: Vec<T> = to_vec(&entry(&f, "proc.x"));
    let params: Vec<P> = to_vec(&entry(&f, params));
    let masks = entry(&f, &format!("proc.{name}.{}", suffix::<T>()));
    let rows = x.len() / V;
    assert_eq!(masks.len(), params.len() * rows * V);
    for (pi, &p) in params.iter().enumerate() {
        for r in 0..rows {
            let base = (pi * rows + r) * V;
            let want: Vec<bool> = (0..V).map(|i| masks.get(base + i) != 0.0).collect();
            let orig = row(&x, r);
            let mut a = orig;
            apply(&mut a, p);
            assert_eq!(
                kept(&a),
                want,
                "{name} {p:?} row {r}: kept set differs from HF"
            );
            for i in (0..V).filter(|&i| want[i]) {
                assert_eq!(a[i], orig[i], "{name} {p:?} row {r}: survivor {i} changed");
            }
        }
    }
}

fn check_top_k<T: Real>() {
    let mut s = SelectScratch::<T, V>::new();
    // k is stored as an integer; reading it through f64 is exact.
    check_filter::<T, f64>("top_k", "proc.k", |a, k| {
        top_k(a, k as usize, &mut s).unwrap()
    });
}

fn check_top_p<T: Real>() {
    let mut s = SelectScratch::<T, V>::new();
    check_filter::<T, T>("top_p", "proc.p", |a, p| top_p(a, p, &mut s).unwrap());
}

fn check_min_p<T: Real>() {
    check_filter::<T, T>("min_p", "proc.min_p", |a, m| min_p(a, m).unwrap());
}

f32_and_f64!(check_top_k: top_k_matches_hf_f32, top_k_matches_hf_f64);
f32_and_f64!(check_top_p: top_p_matches_hf_f32, top_p_matches_hf_f64);
f32_and_f64!(check_min_p: min_p_matches_hf_f32, min_p_matches_hf_f64);

fn check_pipeline<T: Real>() {
    let f = file();
    let x: Vec<T> = to_vec(&entry(&f, "pipe.x"));
    let cfg: Vec<f64> = to_vec(&entry(&f, "pipe.cfg"));
    let want: Vec<T> = to_vec(&entry(&f, &format!("pipe.out.{}", suffix::<T>())));
    let rows = x.len() / V;
    let (rt, at) = ref_tol::<T>();
    let mut scratch = SamplerScratch::<T, V>::new();
    for (c, enc) in cfg.chunks(4).enumerate() {
        let s = sampler_of::<T>(enc);
        for r in 0..rows {
            let w = row(&want, c * rows + r);
            let mut a = row(&x, r);
            s.process(&mut a, &mut scratch).unwrap();
            assert_eq!(
                kept(&a),
                kept(&w),
                "{s:?} row {r}: kept set differs from HF"
            );
            assert_close(&format!("{s:?} row {r}"), &a, &w, rt, at);
        }
    }
}

f32_and_f64!(check_pipeline: pipeline_matches_hf_chain_f32, pipeline_matches_hf_chain_f64);

/// The runtime-vocabulary faces (feature `std`) give exactly the const faces'
/// results on the reference inputs.
#[cfg(feature = "std")]
#[test]
fn dyn_faces_match_const_faces() {
    use constml::decode::{
        SamplerScratchDyn, SelectScratchDyn, min_p_dyn, temperature_dyn, top_k_dyn, top_p_dyn,
    };
    let f = file();
    let x: Vec<f32> = to_vec(&entry(&f, "proc.x"));
    let cfg: Vec<f64> = to_vec(&entry(&f, "pipe.cfg"));
    let mut s = SelectScratch::<f32, V>::new();
    let mut sd = SelectScratchDyn::<f32>::new(V).unwrap();
    let mut ss = SamplerScratch::<f32, V>::new();
    let mut ssd = SamplerScratchDyn::<f32>::new(V).unwrap();
    for r in 0..x.len() / V {
        let base = row(&x, r);
        let check = |name: &str, a: [f32; V], d: Vec<f32>| {
            assert_eq!(&d[..], &a[..], "{name} row {r}: dyn face differs");
        };
        for t in [0.0f32, 0.7, 1.5] {
            let (mut a, mut d) = (base, base.to_vec());
            temperature(&mut a, t).unwrap();
            temperature_dyn(&mut d, t).unwrap();
            check("temperature", a, d);
        }
        for k in [1, 5, 256, 300] {
            let (mut a, mut d) = (base, base.to_vec());
            top_k(&mut a, k, &mut s).unwrap();
            top_k_dyn(&mut d, k, &mut sd).unwrap();
            check("top_k", a, d);
        }
        for p in [0.0f32, 0.5, 0.9, 1.0] {
            let (mut a, mut d) = (base, base.to_vec());
            top_p(&mut a, p, &mut s).unwrap();
            top_p_dyn(&mut d, p, &mut sd).unwrap();
            check("top_p", a, d);
            let (mut a, mut d) = (base, base.to_vec());
            min_p(&mut a, p).unwrap();
            min_p_dyn(&mut d, p).unwrap();
            check("min_p", a, d);
        }
        for c in cfg.chunks(4) {
            let smp = sampler_of::<f32>(c);
            let (mut a, mut d) = (base, base.to_vec());
            smp.process(&mut a, &mut ss).unwrap();
            smp.process_dyn(&mut d, &mut ssd).unwrap();
            check("sampler", a, d);
        }
    }
}

// ------------------------------------------------------------------ sampling statistics

/// Pearson's statistic over the categories of positive probability, and its
/// degrees of freedom.
fn chi_square(counts: &[u64], probs: &[f64], n: u64) -> (f64, usize) {
    let mut chi = 0.0;
    let mut cats = 0usize;
    for (&c, &p) in counts.iter().zip(probs).filter(|&(_, &p)| p > 0.0) {
        let e = p * n as f64;
        chi += (c as f64 - e) * (c as f64 - e) / e;
        cats += 1;
    }
    (chi, cats.saturating_sub(1))
}

/// Asserts that no category of probability 0 was drawn.
#[track_caller]
fn assert_zero_never_drawn(counts: &[u64], probs: &[f64]) {
    for (i, (&c, &p)) in counts.iter().zip(probs).enumerate() {
        assert!(
            p > 0.0 || c == 0,
            "token {i} has probability 0 but was drawn {c} times"
        );
    }
}

/// Upper critical value of χ²(df) at significance ≈ 1e−6 (Wilson–Hilferty).
fn critical(df: usize) -> f64 {
    let z = 4.753; // one-sided normal quantile for 1e-6
    let d = df as f64;
    let a = 2.0 / (9.0 * d);
    d * (1.0 - a + z * a.sqrt()).powi(3)
}

fn check_chi_square<T: Real>(seed: u64) {
    let f = file();
    let x: Vec<T> = to_vec(&entry(&f, "chi.x"));
    let cfg: Vec<f64> = to_vec(&entry(&f, "chi.cfg"));
    let probs: Vec<f64> = to_vec(&entry(&f, "chi.probs"));
    let rows = x.len() / CV;
    let n: u64 = 200_000;
    let mut scratch = SamplerScratch::<T, CV>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    for (c, enc) in cfg.chunks(4).enumerate() {
        let s = sampler_of::<T>(enc);
        for r in 0..rows {
            let logits: [T; CV] = x[r * CV..(r + 1) * CV].try_into().unwrap();
            let want = &probs[(c * rows + r) * CV..(c * rows + r + 1) * CV];
            let mut counts = [0u64; CV];
            for _ in 0..n {
                counts[s.sample(&logits, &mut scratch, &mut rng).unwrap()] += 1;
            }
            assert_zero_never_drawn(&counts, want);
            let (chi, df) = chi_square(&counts, want, n);
            if df == 0 {
                continue; // one survivor: covered by the zero-probability check
            }
            assert!(
                chi < critical(df),
                "{s:?} row {r}: chi² {chi:.1} ≥ {:.1} (df {df})",
                critical(df)
            );
            // Power: the same counts against the unfiltered softmax (config 0) must fail.
            if c > 0 {
                let (chi0, df0) = chi_square(&counts, &probs[r * CV..(r + 1) * CV], n);
                assert!(
                    chi0 > critical(df0),
                    "{s:?} row {r}: filtered draws look unfiltered"
                );
            }
        }
    }
}

#[test]
fn draws_match_the_hf_filtered_distribution_f32() {
    check_chi_square::<f32>(2024);
}

#[test]
fn draws_match_the_hf_filtered_distribution_f64() {
    check_chi_square::<f64>(7);
}

#[test]
fn sample_probs_matches_its_distribution() {
    // Dyadic weights that sum to 1: the weights are their own probabilities.
    let w = [0.5f32, 0.0, 0.25, 0.125, 0.125];
    let probs = w.map(f64::from);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let n = 100_000u64;
    let mut counts = [0u64; 5];
    for _ in 0..n {
        counts[sample_probs(&w, &mut rng).unwrap()] += 1;
    }
    assert_zero_never_drawn(&counts, &probs);
    let (chi, df) = chi_square(&counts, &probs, n);
    assert!(chi < critical(df), "chi² {chi}");
}
