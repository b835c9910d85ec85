//! The on-target test suite: constml's results on the microcontroller compared
//! with the same committed reference vectors the host tests use (PyTorch,
//! scikit-learn, Hugging Face; `tests/reference/`), embedded in flash. `build.rs`
//! copies the entries each target has room for (the Cortex-M0 gets a subset).
//!
//! Every test runs on both backends where the API takes one: on these targets
//! `Simd` is `wide`'s per-lane path, so the per-lane `libm` exp/tanh/erf/sqrt
//! code that only microcontrollers take is checked here against PyTorch.
//! The last line printed is `N passed, M failed`; the exit status is 0 only if
//! nothing failed (see `firmware/run-tests`).
#![no_std]
#![no_main]

#[path = "../../../tests/common/refvec.rs"]
mod refvec;

#[path = "../../../tests/common/pins.rs"]
mod pins;

#[cfg(not(small_target))]
#[path = "../../../tests/common/exercise.rs"]
mod exercise;

use constml::attention::{AttnOptions, KvCache, WeightsOut, attend_cache_with, sdpa_views_with};
use constml::decode::SamplerScratch;
use constml::ml::{KMeansConfig, KMeansInit, kmeans_scratch_len, kmeans_views_with};
use constml::nn::{
    Activation, Adam, Cell, Conv2dShape, CrossEntropy, Param, RecurrentParams, RnnShape,
    activation_backward_with, activation_forward_with, conv2d_views_with, cross_entropy_views_with,
    linear_backward_views_with, linear_views_with, recurrent_forward_scratch_len,
    recurrent_forward_views_with, recurrent_saved_len,
};
use constml::norm::{
    NormStats, layer_norm_backward_views_with, layer_norm_views_with, rms_norm_backward_views_with,
    rms_norm_views_with,
};
use constml::position::{Rope, RopeConfig, RopeLayout};
use constml::{Accumulate, Backend, MatMut, MatRef, Scalar, Simd};
use constml_firmware::{Fail, Outcome, close, ensure, println, run};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use refvec::{Entry, RefFile};

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

// ------------------------------------------------------------------ data

macro_rules! reference {
    ($name:ident, $file:literal) => {
        static $name: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/", $file));
    };
}
reference!(FOUNDATION, "foundation.bin");
reference!(NN, "nn.bin");
reference!(NORM, "norm.bin");
reference!(POSITION, "position.bin");
reference!(ATTENTION, "attention.bin");
reference!(ML, "ml.bin");
reference!(CONV, "conv.bin");
reference!(RNN, "rnn.bin");
#[cfg(not(small_target))]
reference!(LLAMA, "llama.bin");
#[cfg(not(small_target))]
reference!(Q8, "q8.bin");

/// Default tolerance against references: 1e-5 relative + 1e-6 absolute.
const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;

fn parse(bytes: &'static [u8]) -> Result<RefFile<'static>, Fail> {
    RefFile::parse(bytes).ok_or(Fail::Check("embedded reference file does not parse"))
}

/// A name assembled on the stack (no allocation): `prefix + key`.
struct Name {
    buf: [u8; 96],
    len: usize,
}

impl Name {
    fn of(parts: &[&str]) -> Self {
        let mut n = Name {
            buf: [0; 96],
            len: 0,
        };
        for p in parts {
            for &b in p.as_bytes() {
                if n.len < n.buf.len() {
                    n.buf[n.len] = b;
                    n.len += 1;
                }
            }
        }
        n
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

fn entry(f: &RefFile<'static>, parts: &[&str]) -> Result<Entry<'static>, Fail> {
    let n = Name::of(parts);
    match f.get(n.as_str()) {
        Some(e) => Ok(e),
        None => {
            println!("(missing: {})", n.as_str());
            Err(Fail::Missing("a reference entry"))
        }
    }
}

/// Decodes an entry (any element type) into the front of `buf` as `f32`.
fn load<'b>(
    f: &RefFile<'static>,
    parts: &[&str],
    buf: &'b mut [f32],
) -> Result<&'b mut [f32], Fail> {
    let e = entry(f, parts)?;
    let n = e.len();
    let out = buf
        .get_mut(..n)
        .ok_or(Fail::Check("test buffer smaller than the reference entry"))?;
    for (i, o) in out.iter_mut().enumerate() {
        *o = e.get_f32(i);
    }
    Ok(out)
}

/// The shape of a 2-D entry.
fn dims2(f: &RefFile<'static>, parts: &[&str]) -> Result<(usize, usize), Fail> {
    let e = entry(f, parts)?;
    match e.dims() {
        &[r, c] => Ok((r, c)),
        _ => Err(Fail::Check("entry is not 2-D")),
    }
}

/// Integer entry `i` (i64 stored).
fn int(f: &RefFile<'static>, parts: &[&str], i: usize) -> Result<usize, Fail> {
    let e = entry(f, parts)?;
    if i >= e.len() {
        return Err(Fail::Check("integer entry too short"));
    }
    Ok(e.get(i) as usize)
}

/// The case prefixes `family/<case>/f32/` of `f` holding an entry `key`.
fn cases<'a>(
    f: &'a RefFile<'static>,
    family: &'a str,
    key: &'a str,
) -> impl Iterator<Item = &'static str> + 'a {
    f.entries().filter_map(move |e| {
        let name = e.name;
        let stem = name.strip_suffix(key)?;
        (stem.starts_with(family) && stem.ends_with("/f32/")).then_some(stem)
    })
}

// ------------------------------------------------------------------ kernels

const GEMM_BUF: usize = if cfg!(small_target) { 320 } else { 4096 };

fn gemm_on<B: Backend>() -> Outcome {
    let f = parse(FOUNDATION)?;
    let mut n_cases = 0;
    for p in cases(&f, "gemm/", "ab_exact") {
        let (mut a, mut b, mut bt) = ([0.0f32; GEMM_BUF], [0.0f32; GEMM_BUF], [0.0f32; GEMM_BUF]);
        let (mut c, mut want, mut c0) =
            ([0.0f32; GEMM_BUF], [0.0f32; GEMM_BUF], [0.0f32; GEMM_BUF]);
        let ae = entry(&f, &[p, "a"])?;
        let be = entry(&f, &[p, "b"])?;
        let (m, k, n) = (ae.dims()[0], ae.dims()[1], be.dims()[1]);
        let a = load(&f, &[p, "a"], &mut a)?;
        let b = load(&f, &[p, "b"], &mut b)?;
        let want = load(&f, &[p, "ab_exact"], &mut want)?;
        let c0 = load(&f, &[p, "c0"], &mut c0)?;
        let bt = &mut bt[..k * n];
        for i in 0..k {
            for j in 0..n {
                bt[j * k + i] = b[i * n + j];
            }
        }
        let c = &mut c[..m * n];
        c.fill(f32::NAN);
        B::gemm(
            MatRef::new(a, m, k)?,
            MatRef::new(b, k, n)?,
            MatMut::new(c, m, n)?,
            Accumulate::Overwrite,
        )?;
        close("gemm", c, want, ATOL, RTOL)?;
        c.fill(f32::NAN);
        B::gemm_bt(
            MatRef::new(a, m, k)?,
            MatRef::new(bt, n, k)?,
            MatMut::new(c, m, n)?,
            Accumulate::Overwrite,
        )?;
        close("gemm_bt", c, want, ATOL, RTOL)?;
        // Accumulate onto c0.
        c.copy_from_slice(c0);
        B::gemm(
            MatRef::new(a, m, k)?,
            MatRef::new(b, k, n)?,
            MatMut::new(c, m, n)?,
            Accumulate::Add,
        )?;
        for (w, &z) in want.iter_mut().zip(c0.iter()) {
            *w += z;
        }
        close("gemm add", c, want, ATOL, RTOL)?;
        n_cases += 1;
    }
    ensure(n_cases >= 3, "too few gemm cases embedded")
}

fn matvec_on<B: Backend>() -> Outcome {
    let f = parse(FOUNDATION)?;
    let mut n_cases = 0;
    for p in cases(&f, "matvec/", "y_exact") {
        let (mut w, mut x, mut y, mut want) =
            ([0.0f32; 1600], [0.0f32; 80], [0.0f32; 80], [0.0f32; 80]);
        let we = entry(&f, &[p, "w"])?;
        let (rows, cols) = (we.dims()[0], we.dims()[1]);
        let w = load(&f, &[p, "w"], &mut w)?;
        let x = load(&f, &[p, "x"], &mut x)?;
        let want = load(&f, &[p, "y_exact"], &mut want)?;
        let y = &mut y[..rows];
        y.fill(f32::NAN);
        B::matvec(MatRef::new(w, rows, cols)?, x, y, Accumulate::Overwrite)?;
        close("matvec", y, want, ATOL, RTOL)?;
        n_cases += 1;
    }
    ensure(n_cases >= 2, "too few matvec cases embedded")
}

fn softmax_on<B: Backend>() -> Outcome {
    let f = parse(FOUNDATION)?;
    let mut n_cases = 0;
    for p in cases(&f, "softmax/", "softmax_exact") {
        let (mut x, mut y, mut want) = ([0.0f32; 128], [0.0f32; 128], [0.0f32; 128]);
        let x = load(&f, &[p, "x"], &mut x)?;
        let y = &mut y[..x.len()];
        y.copy_from_slice(x);
        B::softmax(y);
        close(
            "softmax",
            y,
            load(&f, &[p, "softmax_exact"], &mut want)?,
            ATOL,
            RTOL,
        )?;
        y.copy_from_slice(x);
        B::log_softmax(y);
        close(
            "log_softmax",
            y,
            load(&f, &[p, "log_softmax_exact"], &mut want)?,
            ATOL,
            RTOL,
        )?;
        n_cases += 1;
    }
    ensure(n_cases >= 1, "no softmax case embedded")
}

/// The activations over 335 inputs spanning their ranges (exp, tanh and erf
/// per lane through `libm` on these targets).
fn activations_on<B: Backend>() -> Outcome {
    let f = parse(FOUNDATION)?;
    let (mut x, mut want) = ([0.0f32; 335], [0.0f32; 335]);
    let x = load(&f, &["act/f32/x"], &mut x)?;
    type Kernel = fn(&mut [f32]);
    let kernels: [(&str, Kernel); 6] = [
        ("relu_exact", B::relu::<f32>),
        ("sigmoid_exact", B::sigmoid::<f32>),
        ("tanh_exact", B::tanh::<f32>),
        ("silu_exact", B::silu::<f32>),
        ("gelu_exact", B::gelu::<f32>),
        ("gelu_tanh_exact", B::gelu_tanh::<f32>),
    ];
    for (name, kernel) in kernels {
        let mut y = [0.0f32; 335];
        y.copy_from_slice(x);
        kernel(&mut y);
        close(
            "activation",
            &y,
            load(&f, &["act/f32/", name], &mut want)?,
            ATOL,
            RTOL,
        )?;
    }
    Ok(())
}

/// Activation forward and backward against autograd (nn.bin).
fn activation_grads_on<B: Backend>() -> Outcome {
    let f = parse(NN)?;
    let (mut x, mut dy, mut want) = ([0.0f32; 33], [0.0f32; 33], [0.0f32; 33]);
    let x = load(&f, &["act/x"], &mut x)?;
    let dy = load(&f, &["act/dy"], &mut dy)?;
    let acts = [
        ("relu", Activation::Relu),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
        ("silu", Activation::Silu),
        ("gelu", Activation::Gelu),
        ("gelu_tanh", Activation::GeluTanh),
    ];
    for (name, act) in acts {
        let (mut y, mut dx) = ([0.0f32; 33], [0.0f32; 33]);
        activation_forward_with::<B, f32>(act, x, &mut y)?;
        close(
            "act y",
            &y,
            load(&f, &[name, "/y/f32"], &mut want)?,
            1e-6,
            1e-5,
        )?;
        activation_backward_with::<B, f32>(act, x, &y, dy, &mut dx)?;
        close(
            "act dx",
            &dx,
            load(&f, &[name, "/dx/f32"], &mut want)?,
            1e-6,
            1e-5,
        )?;
    }
    Ok(())
}

// ------------------------------------------------------------------ norms

/// LayerNorm and RMSNorm forward and backward (sqrt per lane) against autograd.
fn norms_on<B: Backend>() -> Outcome {
    let f = parse(NORM)?;
    const BUF: usize = if cfg!(small_target) { 128 } else { 8192 };
    const CW: usize = if cfg!(small_target) { 16 } else { 4096 };
    let (mut x, mut dy, mut w, mut b) = ([0.0f32; BUF], [0.0f32; BUF], [0.0f32; CW], [0.0f32; CW]);
    let (mut y, mut dx, mut want) = ([0.0f32; BUF], [0.0f32; BUF], [0.0f32; BUF]);
    let (mut dw, mut db) = ([0.0f32; CW], [0.0f32; CW]);
    let (mut mean, mut rstd) = ([0.0f32; 8], [0.0f32; 8]);
    let ln: &[&str] = if cfg!(small_target) {
        &["ln_affine/"]
    } else {
        &["ln_affine/", "ln_wide/"]
    };
    for &case in ln {
        let (n, c) = dims2(&f, &[case, "x"])?;
        let eps = if case == "ln_wide/" { 1e-3 } else { 1e-5 };
        let x = load(&f, &[case, "x"], &mut x)?;
        let dy = load(&f, &[case, "dy"], &mut dy)?;
        let w = load(&f, &[case, "weight"], &mut w)?;
        let b = load(&f, &[case, "bias"], &mut b)?;
        let y = &mut y[..n * c];
        let (mean, rstd) = (&mut mean[..n], &mut rstd[..n]);
        layer_norm_views_with::<B, f32>(
            MatRef::new(x, n, c)?,
            MatMut::new(y, n, c)?,
            Some(w),
            Some(b),
            eps,
            Some(NormStats::new(mean, rstd)),
        )?;
        close(
            "layer_norm y",
            y,
            load(&f, &[case, "y/f64"], &mut want)?,
            2e-5,
            2e-5,
        )?;
        let dx = &mut dx[..n * c];
        let (dw, db) = (&mut dw[..c], &mut db[..c]);
        dw.fill(0.0);
        db.fill(0.0);
        layer_norm_backward_views_with::<B, f32>(
            MatRef::new(x, n, c)?,
            MatRef::new(dy, n, c)?,
            MatMut::new(dx, n, c)?,
            Some(w),
            eps,
            Some((mean, rstd)),
            Some(dw),
            Some(db),
        )?;
        close(
            "layer_norm dx",
            dx,
            load(&f, &[case, "dx/f64"], &mut want)?,
            2e-5,
            2e-4,
        )?;
        close(
            "layer_norm dweight",
            dw,
            load(&f, &[case, "dweight/f64"], &mut want)?,
            2e-5,
            2e-4,
        )?;
        close(
            "layer_norm dbias",
            db,
            load(&f, &[case, "dbias/f64"], &mut want)?,
            2e-5,
            2e-4,
        )?;
    }
    let rms: &[&str] = if cfg!(small_target) {
        &["rms_eps/"]
    } else {
        &["rms_eps/", "rms_wide/"]
    };
    for &case in rms {
        let (n, c) = dims2(&f, &[case, "x"])?;
        if n * c > BUF {
            return Err(Fail::Check("rms case larger than the buffer"));
        }
        let x = load(&f, &[case, "x"], &mut x)?;
        let dy = load(&f, &[case, "dy"], &mut dy)?;
        let w = &*load(&f, &[case, "weight"], &mut w)?;
        let y = &mut y[..n * c];
        let r = &mut rstd[..n];
        rms_norm_views_with::<B, f32>(
            MatRef::new(x, n, c)?,
            MatMut::new(y, n, c)?,
            Some(w),
            1e-5,
            Some(NormStats::rstd_only(r)),
        )?;
        close(
            "rms_norm y",
            y,
            load(&f, &[case, "y/f64"], &mut want)?,
            2e-5,
            2e-5,
        )?;
        let dx = &mut dx[..n * c];
        let dw = &mut dw[..c];
        dw.fill(0.0);
        rms_norm_backward_views_with::<B, f32>(
            MatRef::new(x, n, c)?,
            MatRef::new(dy, n, c)?,
            MatMut::new(dx, n, c)?,
            Some(w),
            1e-5,
            Some(r),
            Some(dw),
        )?;
        close(
            "rms_norm dx",
            dx,
            load(&f, &[case, "dx/f64"], &mut want)?,
            2e-5,
            2e-4,
        )?;
        close(
            "rms_norm dweight",
            dw,
            load(&f, &[case, "dweight/f64"], &mut want)?,
            2e-5,
            2e-4,
        )?;
    }
    Ok(())
}

// ------------------------------------------------------------------ position

/// RoPE (interleaved, and half-split on the large targets; d = 64) against the
/// exact reference.
fn rope_on<B: Backend>() -> Outcome {
    let f = parse(POSITION)?;
    let cases: &[(&str, RopeLayout)] = &[
        ("rope/inter_d64/", RopeLayout::Interleaved),
        #[cfg(not(small_target))]
        ("rope/half_d64/", RopeLayout::HalfSplit),
    ];
    for &(case, layout) in cases {
        let (mut x, mut want) = ([0.0f32; 512], [0.0f32; 512]);
        let x = load(&f, &[case, "x"], &mut x)?;
        let want = load(&f, &[case, "out"], &mut want)?;
        let rope = Rope::<f32, 64, B>::new(RopeConfig::new(layout).theta(10_000.0))?;
        for (i, (row, want)) in x
            .chunks_exact_mut(64)
            .zip(want.chunks_exact(64))
            .enumerate()
        {
            let pos = int(&f, &[case, "pos"], i)?;
            let m = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            rope.rotate(pos, row)?;
            close("rope", row, want, 2e-6 * m, 0.0)?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ attention

/// Scaled dot-product attention: plain, and causal (bottom-right, 3 queries at
/// the end of 7 keys) against PyTorch.
fn sdpa_on<B: Backend>() -> Outcome {
    let f = parse(ATTENTION)?;
    for (case, causal) in [("sdpa_plain/", false), ("sdpa_causal/", true)] {
        let (mut q, mut k, mut v) = ([0.0f32; 64], [0.0f32; 64], [0.0f32; 64]);
        let (mut out, mut w, mut want) = ([0.0f32; 64], [0.0f32; 64], [0.0f32; 64]);
        let ((nq, d), (nk, _), (_, dv)) = (
            dims2(&f, &[case, "q"])?,
            dims2(&f, &[case, "k"])?,
            dims2(&f, &[case, "v"])?,
        );
        let q = load(&f, &[case, "q"], &mut q)?;
        let k = load(&f, &[case, "k"], &mut k)?;
        let v = load(&f, &[case, "v"], &mut v)?;
        let out = &mut out[..nq * dv];
        let w = &mut w[..nq * nk];
        let o = AttnOptions::new();
        // The causal case's reference has a scale override of 0.3.
        let opts = if causal { o.causal().scale(0.3) } else { o };
        sdpa_views_with::<B, f32>(
            MatRef::new(q, nq, d)?,
            MatRef::new(k, nk, d)?,
            MatRef::new(v, nk, dv)?,
            MatMut::new(out, nq, dv)?,
            w,
            &opts,
        )?;
        close(
            "sdpa out",
            out,
            load(&f, &[case, "out_f32"], &mut want)?,
            2e-6,
            2e-5,
        )?;
        close(
            "sdpa weights",
            w,
            load(&f, &[case, "w_f32"], &mut want)?,
            2e-6,
            2e-5,
        )?;
    }
    Ok(())
}

/// A ring-buffer KV cache of capacity 3 wraps twice while decoding: each query
/// over the cache equals PyTorch's sliding-window (3) causal attention.
fn kv_ring_on<B: Backend>() -> Outcome {
    const D: usize = 5; // q/k are 4 wide, padded with a zero; v is 5 wide
    let f = parse(ATTENTION)?;
    let c = "sdpa_window/";
    let (mut q, mut k, mut v, mut want) = ([0.0f32; 16], [0.0f32; 36], [0.0f32; 45], [0.0f32; 20]);
    let q = load(&f, &[c, "q"], &mut q)?;
    let k = load(&f, &[c, "k"], &mut k)?;
    let v = load(&f, &[c, "v"], &mut v)?;
    let want = load(&f, &[c, "out_f32"], &mut want)?;
    let (nq, nk) = (4, 9);
    let mut cache = KvCache::<f32, 1, D, 3>::new_ring();
    let opts = AttnOptions::new().scale(0.5); // 1/sqrt(4): the unpadded width
    for j in 0..nk {
        let mut kj = [[0.0f32; D]; 1];
        kj[0][..4].copy_from_slice(&k[j * 4..j * 4 + 4]);
        let mut vj = [[0.0f32; D]; 1];
        vj[0].copy_from_slice(&v[j * D..j * D + D]);
        cache.append(&kj, &vj)?;
        // Query i sits at position nk − nq + i.
        if j + nq >= nk {
            let i = j + nq - nk;
            let mut qi = [[[0.0f32; D]; 1]; 1];
            qi[0][0][..4].copy_from_slice(&q[i * 4..i * 4 + 4]);
            let mut ctx = [[[0.0f32; D]; 1]; 1];
            let mut scores = [[0.0f32; 4]; 1];
            attend_cache_with::<B, f32, 1, 1, 1, D, 3, 4>(
                &qi,
                j,
                &cache,
                None,
                &mut ctx,
                &mut scores,
                WeightsOut::None,
                &opts,
            )?;
            close(
                "ring attention",
                &ctx[0][0],
                &want[i * D..i * D + D],
                2e-6,
                2e-5,
            )?;
        }
    }
    ensure(
        cache.oldest_position() == nk - 3,
        "ring: oldest position after two wraps",
    )
}

// ------------------------------------------------------------------ decoding

/// Seeds 0..8, four draws each, for every pinned configuration over the
/// pinned logits of vocabulary `V`: the tokens must be `want`.
fn check_pins<T: constml::Real, const V: usize>(
    want: &[[usize; 32]; 4],
    what: &'static str,
) -> Outcome {
    let logits = pins::pinned_logits::<T, V>();
    let mut scratch = SamplerScratch::<T, V>::new();
    for (cfg, want) in pins::pinned_configs::<T>().iter().zip(want) {
        let mut i = 0;
        for seed in 0..8 {
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
            for _ in 0..4 {
                let t = cfg.sample(&logits, &mut scratch, &mut rng)?;
                if t != want[i] {
                    return Err(Fail::Value {
                        what,
                        index: i,
                        got: t as f64,
                        want: want[i] as f64,
                    });
                }
                i += 1;
            }
        }
    }
    Ok(())
}

/// The seeded sampler draws exactly the tokens pinned on the host (V = 256).
fn sampler_pins_small() -> Outcome {
    check_pins::<f32, { pins::N_SMALL }>(&pins::PINNED_SMALL_F32, "pinned token (V = 256)")
}

/// The seeded sampler draws exactly the tokens pinned on the host (V = 1000,
/// f32 and f64).
#[cfg(not(small_target))]
fn sampler_pins() -> Outcome {
    check_pins::<f32, { pins::N }>(&pins::PINNED_F32, "pinned token (V = 1000, f32)")?;
    check_pins::<f64, { pins::N }>(&pins::PINNED_F64, "pinned token (V = 1000, f64)")
}

/// `repro_exp` and `uniform` give the host's bits.
fn repro_bits() -> Outcome {
    ensure(
        pins::exp_checksums() == pins::PINNED_CHECKSUMS,
        "repro_exp / uniform checksums differ from the host's",
    )
}

// ------------------------------------------------------------------ classic ML

/// k-means on iris from given centres: scikit-learn's labels, iterations and
/// centres.
fn kmeans_on<B: Backend>() -> Outcome {
    let f = parse(ML)?;
    let mut x = [0.0f32; 600];
    let x = load(&f, &["iris/x"], &mut x)?;
    let mut init = [0.0f32; 12];
    let init = load(&f, &["kmeans/given_a/init"], &mut init)?;
    let cfg = KMeansConfig {
        max_iter: 300,
        tol: 1e-4,
        n_init: 1,
    };
    let mut centers = [0.0f32; 12];
    let mut labels = [0usize; 150];
    let mut scratch = [0.0f32; kmeans_scratch_len(150, 3, 4)];
    let mut ls = [0usize; 150];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let fit = kmeans_views_with::<B, f32, _>(
        MatRef::new(x, 150, 4)?,
        KMeansInit::Given(MatRef::new(init, 3, 4)?),
        &cfg,
        &mut rng,
        MatMut::new(&mut centers, 3, 4)?,
        &mut labels,
        &mut scratch,
        &mut ls,
    )?;
    for (i, &l) in labels.iter().enumerate() {
        if l != int(&f, &["kmeans/given_a/labels"], i)? {
            return Err(Fail::Check("k-means labels differ from scikit-learn's"));
        }
    }
    ensure(
        fit.n_iter == int(&f, &["kmeans/given_a/n_iter"], 0)?,
        "k-means iterations differ from scikit-learn's",
    )?;
    let mut want = [0.0f32; 12];
    close(
        "k-means centres",
        &centers,
        load(&f, &["kmeans/given_a/centers"], &mut want)?,
        2e-5,
        2e-5,
    )
}

// ------------------------------------------------------------------ nn

/// A 3×3 padded convolution (2 images, 3 → 4 channels, 7×6) against PyTorch.
fn conv2d_on<B: Backend>() -> Outcome {
    let f = parse(CONV)?;
    let c = "conv/s1_p1_d1/";
    let shape = Conv2dShape::new(2, 3, 7, 6, 4, 3, 3).padding(1, 1);
    let (mut x, mut w, mut b) = ([0.0f32; 252], [0.0f32; 108], [0.0f32; 4]);
    let (mut y, mut want) = ([0.0f32; 336], [0.0f32; 336]);
    let x = load(&f, &[c, "x"], &mut x)?;
    let w = load(&f, &[c, "weight"], &mut w)?;
    let b = load(&f, &[c, "bias"], &mut b)?;
    y.fill(f32::NAN);
    conv2d_views_with::<B, f32>(x, &shape, w, Some(b), &mut y)?;
    close(
        "conv2d",
        &y,
        load(&f, &[c, "out/f32"], &mut want)?,
        ATOL,
        RTOL,
    )
}

/// An LSTM (batch 2, 4 steps, 3 → 5) forward against PyTorch.
fn lstm_on<B: Backend>() -> Outcome {
    const S: RnnShape = RnnShape::new(2, 4, 3, 5);
    let f = parse(RNN)?;
    let c = "rnn/lstm_init/";
    let (mut wih, mut whh, mut bih, mut bhh) =
        ([0.0f32; 60], [0.0f32; 100], [0.0f32; 20], [0.0f32; 20]);
    let (mut x, mut h0, mut c0) = ([0.0f32; 24], [0.0f32; 10], [0.0f32; 10]);
    let p = RecurrentParams::new(
        Cell::Lstm,
        load(&f, &[c, "w_ih"], &mut wih)?,
        load(&f, &[c, "w_hh"], &mut whh)?,
        Some(load(&f, &[c, "b_ih"], &mut bih)?),
        Some(load(&f, &[c, "b_hh"], &mut bhh)?),
    );
    let x = load(&f, &[c, "x"], &mut x)?;
    let h0 = load(&f, &[c, "h0"], &mut h0)?;
    let c0 = load(&f, &[c, "c0"], &mut c0)?;
    let (mut out, mut h_n, mut c_n) = ([0.0f32; 40], [0.0f32; 10], [0.0f32; 10]);
    let mut saved = [0.0f32; recurrent_saved_len(Cell::Lstm, &S)];
    let mut scratch = [0.0f32; recurrent_forward_scratch_len(Cell::Lstm, &S)];
    recurrent_forward_views_with::<B, f32>(
        &p,
        &S,
        x,
        Some(h0),
        Some(c0),
        &mut out,
        Some(&mut h_n),
        Some(&mut c_n),
        &mut saved,
        &mut scratch,
    )?;
    let mut want = [0.0f32; 40];
    close(
        "lstm out",
        &out,
        load(&f, &[c, "out/f32"], &mut want)?,
        ATOL,
        RTOL,
    )?;
    close(
        "lstm h_n",
        &h_n,
        load(&f, &[c, "h_n/f32"], &mut want)?,
        ATOL,
        RTOL,
    )?;
    close(
        "lstm c_n",
        &c_n,
        load(&f, &[c, "c_n/f32"], &mut want)?,
        ATOL,
        RTOL,
    )
}

/// The pieces of an MLP training step against autograd: a linear layer forward
/// and backward, cross-entropy with its gradient, then four Adam steps.
fn training_on<B: Backend>() -> Outcome {
    let f = parse(NN)?;
    let (mut x, mut w, mut b, mut dy) = ([0.0f32; 35], [0.0f32; 28], [0.0f32; 4], [0.0f32; 20]);
    let x = load(&f, &["linear/x"], &mut x)?;
    let w = load(&f, &["linear/weight"], &mut w)?;
    let b = load(&f, &["linear/bias"], &mut b)?;
    let dy = load(&f, &["linear/dy"], &mut dy)?;
    let (mut y, mut dx, mut dw, mut db) = ([0.0f32; 20], [0.0f32; 35], [0.0f32; 28], [0.0f32; 4]);
    let mut want = [0.0f32; 35];
    linear_views_with::<B, f32>(
        MatRef::new(x, 5, 7)?,
        MatRef::new(w, 4, 7)?,
        Some(b),
        MatMut::new(&mut y, 5, 4)?,
    )?;
    close(
        "linear y",
        &y,
        load(&f, &["linear/y/f32"], &mut want)?,
        ATOL,
        RTOL,
    )?;
    linear_backward_views_with::<B, f32>(
        MatRef::new(x, 5, 7)?,
        MatRef::new(w, 4, 7)?,
        MatRef::new(dy, 5, 4)?,
        Some(MatMut::new(&mut dx, 5, 7)?),
        Some(MatMut::new(&mut dw, 4, 7)?),
        Some(&mut db),
    )?;
    close(
        "linear dx",
        &dx,
        load(&f, &["linear/dx/f32"], &mut want)?,
        ATOL,
        RTOL,
    )?;
    close(
        "linear dweight",
        &dw,
        load(&f, &["linear/dweight/f32"], &mut want)?,
        ATOL,
        RTOL,
    )?;
    close(
        "linear dbias",
        &db,
        load(&f, &["linear/dbias/f32"], &mut want)?,
        ATOL,
        RTOL,
    )?;

    // Cross-entropy over 5 rows of 4 classes.
    let mut logits = [0.0f32; 20];
    let logits = load(&f, &["ce/logits"], &mut logits)?;
    let mut targets = [0usize; 5];
    for (i, t) in targets.iter_mut().enumerate() {
        *t = int(&f, &["ce/target"], i)?;
    }
    let mut dl = [0.0f32; 20];
    let loss = cross_entropy_views_with::<B, f32>(
        MatRef::new(logits, 5, 4)?,
        &targets,
        &CrossEntropy::default(),
        Some(MatMut::new(&mut dl, 5, 4)?),
    )?;
    close(
        "ce loss",
        &[loss],
        load(&f, &["ce/loss/f32"], &mut want)?,
        ATOL,
        RTOL,
    )?;
    close(
        "ce dlogits",
        &dl,
        load(&f, &["ce/dlogits/f32"], &mut want)?,
        ATOL,
        RTOL,
    )?;

    // Adam on two parameters with the recorded gradients.
    let (mut a, mut bb) = ([0.0f32; 12], [0.0f32; 4]);
    load(&f, &["opt/p0"], &mut a)?;
    load(&f, &["opt/p1"], &mut bb)?;
    let (mut sa, mut sb) = ([0.0f32; 24], [0.0f32; 8]);
    let mut pr = [0.0f32; 5];
    let pr = load(&f, &["opt/adam/params"], &mut pr)?;
    let mut adam = Adam::new(pr[0])
        .betas(pr[1], pr[2])
        .eps(pr[3])
        .weight_decay(pr[4]);
    const STEPS: [(&str, &str, &str, &str); 4] = [
        (
            "opt/grad0/p0",
            "opt/grad0/p1",
            "opt/adam/step0/p0/f32",
            "opt/adam/step0/p1/f32",
        ),
        (
            "opt/grad1/p0",
            "opt/grad1/p1",
            "opt/adam/step1/p0/f32",
            "opt/adam/step1/p1/f32",
        ),
        (
            "opt/grad2/p0",
            "opt/grad2/p1",
            "opt/adam/step2/p0/f32",
            "opt/adam/step2/p1/f32",
        ),
        (
            "opt/grad3/p0",
            "opt/grad3/p1",
            "opt/adam/step3/p0/f32",
            "opt/adam/step3/p1/f32",
        ),
    ];
    for (g0, g1, w0, w1) in STEPS {
        let (mut ga, mut gb) = ([0.0f32; 12], [0.0f32; 4]);
        let ga = load(&f, &[g0], &mut ga)?;
        let gb = load(&f, &[g1], &mut gb)?;
        adam.step(&mut [
            Param::new(&mut a, ga, &mut sa),
            Param::new(&mut bb, gb, &mut sb),
        ])?;
        close("adam p0", &a, load(&f, &[w0], &mut want)?, ATOL, RTOL)?;
        close("adam p1", &bb, load(&f, &[w1], &mut want)?, ATOL, RTOL)?;
    }
    Ok(())
}

// ------------------------------------------------------------------ decoder

/// The llama2.c-format tiny Llama (shared classifier) decodes its 16 prompt
/// tokens one at a time from the KV cache: every step's logits match Hugging
/// Face's `LlamaForCausalLM`. Weights decoded from the embedded checkpoint.
#[cfg(not(small_target))]
fn llama_step_on<B: Backend>() -> Outcome {
    use constml::models::{Llama, LlamaState, LogitRows, llama2c_config, llama2c_weights};
    static CKPT: &[u8] = include_bytes!("../../../tests/reference/llama/tiny_shared.bin");
    const FLOATS: usize = (CKPT.len() - 28) / 4;
    static WEIGHTS: [f32; FLOATS] = constml_firmware::f32_le(CKPT, 28);
    let f = parse(LLAMA)?;
    let cfg = llama2c_config(CKPT)?;
    let m = Llama::<f32, B>::new(cfg, llama2c_weights(&cfg, &WEIGHTS)?)?;
    let mut arena = [0.0f32; 16_384];
    let len = cfg.state_len(1);
    let arena = arena
        .get_mut(..len)
        .ok_or(Fail::Check("state arena too small"))?;
    let mut st = LlamaState::new(&cfg, 1, arena)?;
    let hf = entry(&f, &["llama/tiny_shared/hf_logits"])?;
    for t in 0..16 {
        let id = int(&f, &["llama/tiny_shared/prompt_ids"], t)?;
        m.forward(&[id], &mut st, LogitRows::Last)?;
        step_logits("llama logits", st.logits(), &hf, t)?;
    }
    Ok(())
}

/// Step `t`'s logits against row `t` of `want` (one row per step), within
/// 1e-4.
#[cfg(not(small_target))]
fn step_logits(what: &'static str, got: &[f32], want: &Entry<'static>, t: usize) -> Outcome {
    let v = got.len();
    for (j, &g) in got.iter().enumerate() {
        let w = want.get_f32(t * v + j);
        if (g - w).abs() > 1e-4 {
            return Err(Fail::Value {
                what,
                index: t * v + j,
                got: g as f64,
                want: w as f64,
            });
        }
    }
    Ok(())
}

/// The tiny Llama in Q8_0 (llama2.c's version-2 export of the fixture above,
/// viewed in place from flash) decodes its 16 prompt tokens one at a time:
/// every step's logits match a numpy implementation of llama2.c's `runq.c`.
#[cfg(not(small_target))]
fn llama_q8_step_on<B: Backend>() -> Outcome {
    use constml::models::quant::Q8Scratch;
    use constml::models::{LlamaQ8, LlamaState, LogitRows, llama2c_q8_weights};
    static CKPT: &[u8] = include_bytes!("../../../tests/reference/llama/tiny_shared_q80.bin");
    let f = parse(LLAMA)?;
    let q = parse(Q8)?;
    let mut norms = [0.0f32; 1024];
    let (cfg, w) = llama2c_q8_weights(CKPT, &mut norms)?;
    let m = LlamaQ8::<B>::new(cfg, w)?;
    let mut arena = [0.0f32; 16_384];
    let len = cfg.state_len(1);
    let arena = arena
        .get_mut(..len)
        .ok_or(Fail::Check("state arena too small"))?;
    let mut st = LlamaState::new(&cfg, 1, arena)?;
    let (mut sq, mut ss) = ([0i8; 256], [0.0f32; 64]);
    let mut scratch = Q8Scratch {
        q: &mut sq,
        s: &mut ss,
    };
    let want = entry(&q, &["q8/tiny_shared/np_logits"])?;
    for t in 0..16 {
        let id = int(&f, &["llama/tiny_shared/prompt_ids"], t)?;
        m.forward(&[id], &mut st, &mut scratch, LogitRows::Last)?;
        step_logits("Q8_0 llama logits", st.logits(), &want, t)?;
    }
    Ok(())
}

/// Q8_0 rounding as llama2.c defines it: weights half to even, activations
/// half away from zero, the group's largest magnitude at ±127, an all-zero
/// group with scale 0 (values chosen so that the scale is exactly 1).
fn q8_rounding() -> Outcome {
    use constml::models::quant::{Rounding, dequantize_q8, quantize_q8};
    let x = [127.0f32, 2.5, -2.5, 0.5, -0.5, 3.5, 1.49, -126.5];
    let (mut q, mut s) = ([0i8; 8], [0.0f32; 1]);
    quantize_q8(&x, 8, Rounding::HalfEven, &mut q, &mut s)?;
    ensure(
        s == [1.0] && q == [127, 2, -2, 0, 0, 4, 1, -126],
        "half to even",
    )?;
    quantize_q8(&x, 8, Rounding::HalfAway, &mut q, &mut s)?;
    ensure(q == [127, 3, -3, 1, -1, 4, 1, -127], "half away from zero")?;
    let z = [0.0f32; 8];
    quantize_q8(&z, 4, Rounding::HalfEven, &mut q, &mut [9.0; 2])?;
    let mut s2 = [9.0f32; 2];
    quantize_q8(&z, 4, Rounding::HalfAway, &mut q, &mut s2)?;
    ensure(s2 == [0.0, 0.0] && q == [0; 8], "an all-zero group")?;
    let mut back = [1.0f32; 8];
    dequantize_q8(&q, &s2, 4, &mut back)?;
    ensure(back == [0.0; 8], "dequantized zeros")
}

/// Every public no_std entry point (kernels, attention, caches, decoding,
/// position, norms, classic ML, nn, recurrent, Llama, GPT-2) on both backends
/// returns `Ok`: the same code `tests/no_alloc_kernels.rs` runs on the host
/// under a counting allocator, and gets the same checksum bits on both runs.
#[cfg(not(small_target))]
fn exercise_all() -> Outcome {
    let a = exercise::run_all(core::hint::black_box(0.37))?;
    let b = exercise::run_all(core::hint::black_box(0.37))?;
    ensure(a.is_finite(), "exercise checksum is not finite")?;
    constml_firmware::same_bits("exercise checksum, run twice", &[a], &[b])
}

// ------------------------------------------------------------------ main

macro_rules! both {
    ($name:literal, $f:ident) => {
        run(concat!($name, " (Simd)"), $f::<Simd>);
        run(concat!($name, " (Scalar)"), $f::<Scalar>);
    };
}

#[entry]
fn main() -> ! {
    println!("constml on-target suite");
    both!("kernels: gemm, gemm_bt, accumulate", gemm_on);
    both!("kernels: matvec", matvec_on);
    both!("kernels: softmax, log_softmax", softmax_on);
    both!(
        "kernels: activations (libm exp/tanh/erf per lane)",
        activations_on
    );
    both!("nn: activation forward/backward", activation_grads_on);
    both!("norm: LayerNorm, RMSNorm forward/backward", norms_on);
    both!("position: RoPE interleaved and half-split", rope_on);
    both!("attention: sdpa plain and causal", sdpa_on);
    both!(
        "attention: ring KV cache wraps = sliding window",
        kv_ring_on
    );
    run(
        "decode: seeded sampler = host pins (V = 256)",
        sampler_pins_small,
    );
    #[cfg(not(small_target))]
    run(
        "decode: seeded sampler = host pins (V = 1000, f32/f64)",
        sampler_pins,
    );
    run("decode: repro_exp and uniform bits = host", repro_bits);
    both!("ml: k-means on iris = scikit-learn", kmeans_on);
    both!("nn: conv2d", conv2d_on);
    both!("nn: LSTM forward", lstm_on);
    both!("nn: linear, cross-entropy, Adam steps", training_on);
    #[cfg(not(small_target))]
    both!(
        "models: tiny Llama decode steps = Hugging Face",
        llama_step_on
    );
    run(
        "models: Q8_0 rounding (half even / half away, zero groups)",
        q8_rounding,
    );
    #[cfg(not(small_target))]
    both!(
        "models: tiny Llama in Q8_0 = numpy runq.c",
        llama_q8_step_on
    );
    #[cfg(not(small_target))]
    run("every no_std entry point runs (exercise)", exercise_all);
    #[cfg(feature = "fail-check")]
    run("deliberate failure (feature fail-check)", || {
        close("deliberate", &[1.0], &[2.0], 0.0, 0.0)
    });
    #[cfg(feature = "fail-panic")]
    run("deliberate panic (feature fail-panic)", || {
        let v: &[u32] = core::hint::black_box(&[]);
        ensure(v[0] == 0, "unreachable")
    });
    #[cfg(feature = "fail-fault")]
    run("deliberate fault (feature fail-fault)", || {
        constml_firmware::fault();
        Ok(())
    });
    constml_firmware::finish()
}
