//! Decoding processors and the sampler pipeline against Hugging Face's logits
//! warpers (vectors from tests/reference/gen_decode.py: tie-free logits, every
//! top-p / min-p case away from its boundary).

mod common;

use common::{RefFile, assert_close, entry, ref_tol, to_vec};
use constml::Real;
use constml::decode::{Sampler, SamplerScratch, SelectScratch, min_p, temperature, top_k, top_p};

static BIN: &[u8] = include_bytes!("reference/decode.bin");
const V: usize = 257;

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("decode.bin is a CMLREF01 file")
}

fn suffix<T: Real>() -> &'static str {
    if T::BYTES == 4 { "f32" } else { "f64" }
}

/// Row `r` of a (rows, V) entry as an array.
fn row<T: Real>(all: &[T], r: usize) -> [T; V] {
    let mut a = [T::ZERO; V];
    a.copy_from_slice(&all[r * V..(r + 1) * V]);
    a
}

fn kept<T: Real>(x: &[T]) -> Vec<bool> {
    x.iter().map(|v| v.is_finite()).collect()
}

#[test]
fn meta_names_the_reference() {
    let meta = entry(&file(), "meta").text();
    assert!(meta.contains("transformers 5.24"), "{meta}");
    assert!(meta.contains("torch 2.15"), "{meta}");
}

fn check_temperature<T: Real>() {
    let f = file();
    let x: Vec<T> = to_vec(&entry(&f, "proc.x"));
    let ts: Vec<T> = to_vec(&entry(&f, "proc.t"));
    let want: Vec<T> = to_vec(&entry(&f, &format!("proc.temperature.{}", suffix::<T>())));
    let rows = x.len() / V;
    let (rt, at) = ref_tol::<T>();
    for (ti, &t) in ts.iter().enumerate() {
        for r in 0..rows {
            let w = &want[(ti * rows + r) * V..(ti * rows + r + 1) * V];
            let mut a = row(&x, r);
            temperature(&mut a, t).unwrap();
            assert_close(&format!("temperature t={t} row {r}"), &a, w, rt, at);
        }
    }
}

#[test]
fn temperature_matches_hf_f32() {
    check_temperature::<f32>();
}
#[test]
fn temperature_matches_hf_f64() {
    check_temperature::<f64>();
}

/// Applies a filter to every (parameter, row) and compares the kept tokens with
/// Hugging Face's mask; survivors must keep their logit unchanged.
fn check_filter<T: Real, P: Copy + core::fmt::Debug>(
    name: &str,
    params: &[P],
    apply: impl Fn(&mut [T; V], P),
) {
    let f = file();
    let x: Vec<T> = to_vec(&entry(&f, "proc.x"));
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
            for i in 0..V {
                if want[i] {
                    assert_eq!(a[i], orig[i], "{name} {p:?} row {r}: survivor {i} changed");
                }
            }
        }
    }
}

fn check_top_k<T: Real>() {
    let ks: Vec<usize> = {
        let e = entry(&file(), "proc.k");
        (0..e.len()).map(|i| e.get_i64(i) as usize).collect()
    };
    let mut s = SelectScratch::<T, V>::new();
    let s = std::cell::RefCell::new(&mut s);
    check_filter::<T, usize>("top_k", &ks, |a, k| {
        top_k(a, k, &mut s.borrow_mut()).unwrap()
    });
}

#[test]
fn top_k_matches_hf_f32() {
    check_top_k::<f32>();
}
#[test]
fn top_k_matches_hf_f64() {
    check_top_k::<f64>();
}

fn check_top_p<T: Real>() {
    let ps: Vec<T> = to_vec(&entry(&file(), "proc.p"));
    let mut s = SelectScratch::<T, V>::new();
    let s = std::cell::RefCell::new(&mut s);
    check_filter::<T, T>("top_p", &ps, |a, p| {
        top_p(a, p, &mut s.borrow_mut()).unwrap()
    });
}

#[test]
fn top_p_matches_hf_f32() {
    check_top_p::<f32>();
}
#[test]
fn top_p_matches_hf_f64() {
    check_top_p::<f64>();
}

fn check_min_p<T: Real>() {
    let ms: Vec<T> = to_vec(&entry(&file(), "proc.min_p"));
    check_filter::<T, T>("min_p", &ms, |a, m| min_p(a, m).unwrap());
}

#[test]
fn min_p_matches_hf_f32() {
    check_min_p::<f32>();
}
#[test]
fn min_p_matches_hf_f64() {
    check_min_p::<f64>();
}

/// A sampler from an encoded (temperature, top_k, top_p, min_p) row; NaN / −1 = unset.
pub fn sampler_of<T: Real>(c: &[f64]) -> Sampler<T> {
    let opt = |x: f64| {
        if x.is_nan() {
            None
        } else {
            Some(T::from_f64(x))
        }
    };
    Sampler {
        temperature: opt(c[0]),
        top_k: if c[1] < 0.0 {
            None
        } else {
            Some(c[1] as usize)
        },
        top_p: opt(c[2]),
        min_p: opt(c[3]),
    }
}

fn check_pipeline<T: Real>() {
    let f = file();
    let x: Vec<T> = to_vec(&entry(&f, "pipe.x"));
    let cfg: Vec<f64> = to_vec(&entry(&f, "pipe.cfg"));
    let want: Vec<T> = to_vec(&entry(&f, &format!("pipe.out.{}", suffix::<T>())));
    let rows = x.len() / V;
    let ncfg = cfg.len() / 4;
    let (rt, at) = ref_tol::<T>();
    let mut scratch = SamplerScratch::<T, V>::new();
    for c in 0..ncfg {
        let s = sampler_of::<T>(&cfg[c * 4..c * 4 + 4]);
        for r in 0..rows {
            let w = &want[(c * rows + r) * V..(c * rows + r + 1) * V];
            let mut a = row(&x, r);
            s.process(&mut a, &mut scratch).unwrap();
            assert_eq!(kept(&a), kept(w), "{s:?} row {r}: kept set differs from HF");
            assert_close(&format!("{s:?} row {r}"), &a, w, rt, at);
        }
    }
}

#[test]
fn pipeline_matches_hf_chain_f32() {
    check_pipeline::<f32>();
}
#[test]
fn pipeline_matches_hf_chain_f64() {
    check_pipeline::<f64>();
}

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
    let mut sd = SelectScratchDyn::<f32>::new(V);
    let mut ss = SamplerScratch::<f32, V>::new();
    let mut ssd = SamplerScratchDyn::<f32>::new(V);
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
