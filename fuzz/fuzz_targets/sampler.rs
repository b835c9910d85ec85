//! The sampler pipeline on arbitrary logits and parameters.
//!
//! Invariants: the result is `Ok` exactly when the parameters are valid and the
//! logits hold no NaN, no +∞ and at least one value above −∞, and the error is
//! the documented one otherwise; `Sampler::process_dyn` equals the four
//! standalone processors chained in Hugging Face's order, bit for bit; the
//! survivors are a prefix of the ranking (larger scaled logit first, lower id
//! on ties) whose length obeys each stage's rule (top-k keeps min(k, finite),
//! top-p the smallest set with mass ≥ p, min-p the tokens at ≥ min_p × top);
//! the drawn token is in range, a survivor, and of positive weight; softmax of
//! the survivors is finite and sums to 1. `top_p_probs_dyn` on dyadic
//! probabilities, where every sum is exact, keeps exactly the set the rule
//! names.
#![no_main]
// Index loops mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use constml::Error;
use constml::decode::{
    Sampler, SamplerScratchDyn, SelectScratchDyn, min_p_dyn, repro_exp, temperature_dyn, top_k_dyn,
    top_p_dyn, top_p_probs_dyn,
};
use constml_fuzz::{Input, ranked, softmax64};
use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let v = inp.range(1, 300);
    let mode = inp.u8() % 3;
    let logits: Vec<f32> = inp.vec(v, |i| match mode {
        0 => i.any_f32(),
        1 => i.small_f32(),
        _ => {
            if i.u8() < 40 {
                f32::NEG_INFINITY
            } else {
                i.fine_f32() * 8.0
            }
        }
    });
    let unit = |i: &mut Input| -> f32 {
        match i.u8() % 8 {
            0 => 0.0,
            1 => 1.0,
            2 => i.any_f32(),
            _ => i.u8() as f32 / 255.0,
        }
    };
    let temperature = match inp.u8() % 6 {
        0 => None,
        1 => Some(0.0),
        2 => Some(inp.any_f32()),
        3 => Some(f32::from_bits(inp.range(1, 0x0080_0000) as u32)), // tiny: overflow to greedy
        _ => Some(0.05 + inp.u8() as f32 / 64.0),
    };
    let top_k = inp.bool().then(|| inp.range(0, v + 2));
    let top_p = inp.bool().then(|| unit(&mut inp));
    let min_p = inp.bool().then(|| unit(&mut inp));
    let sampler = Sampler {
        temperature,
        top_k,
        top_p,
        min_p,
    };
    if std::env::var_os("FUZZ_DEBUG").is_some() {
        eprintln!("logits {logits:?}\nsampler {sampler:?}");
    }
    check_sampler(&sampler, &logits, inp.u32() as u64);
    check_dyadic_top_p(&mut inp);
});

fn check_sampler(s: &Sampler<f32>, logits: &[f32], seed: u64) {
    let v = logits.len();
    let params_ok = s.temperature.is_none_or(|t| t.is_finite() && t >= 0.0)
        && s.top_k.is_none_or(|k| k >= 1)
        && s.top_p.is_none_or(|p| (0.0..=1.0).contains(&p))
        && s.min_p.is_none_or(|m| (0.0..=1.0).contains(&m));
    let has_nan = logits.iter().any(|x| x.is_nan());
    let has_pinf = logits.contains(&f32::INFINITY);
    let any_above = logits.iter().any(|&x| x > f32::NEG_INFINITY);

    let mut scratch = SamplerScratchDyn::new(v).unwrap();
    let mut processed = logits.to_vec();
    let got = s.process_dyn(&mut processed, &mut scratch);
    let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(seed);
    let token = s.sample_dyn(logits, &mut scratch, &mut rng);

    if !params_ok {
        assert!(
            matches!(got, Err(Error::InvalidParameter { .. })),
            "{got:?}"
        );
        assert!(matches!(token, Err(Error::InvalidParameter { .. })));
        assert_same(&processed, logits, "logits changed on error");
        return;
    }
    if has_nan || has_pinf || !any_above {
        let ok = match got {
            Err(Error::NaN { .. }) => has_nan,
            Err(Error::InvalidParameter { .. }) => has_pinf,
            Err(Error::NoCandidates) => !has_nan && !has_pinf && !any_above,
            _ => false,
        };
        assert!(ok, "wrong outcome {got:?} (nan {has_nan}, +inf {has_pinf})");
        assert_eq!(token.err(), got.err());
        assert_same(&processed, logits, "logits changed on error");
        return;
    }
    got.unwrap();
    let token = token.unwrap();

    // The chain of standalone processors gives the same logits, bit for bit.
    let mut chained = logits.to_vec();
    let mut sel = SelectScratchDyn::new(v).unwrap();
    if let Some(t) = s.temperature {
        temperature_dyn(&mut chained, t).unwrap();
    }
    if let Some(k) = s.top_k {
        top_k_dyn(&mut chained, k, &mut sel).unwrap();
    }
    if let Some(p) = s.top_p {
        top_p_dyn(&mut chained, p, &mut sel).unwrap();
    }
    if let Some(m) = s.min_p {
        min_p_dyn(&mut chained, m).unwrap();
    }
    assert_same(
        &processed,
        &chained,
        "process_dyn differs from the chained processors",
    );

    // Survivors, the drawn token.
    let alive: Vec<usize> = (0..v)
        .filter(|&i| processed[i] > f32::NEG_INFINITY)
        .collect();
    assert!(!alive.is_empty(), "no survivor");
    assert!(
        token < v && processed[token] > f32::NEG_INFINITY,
        "drew a removed token {token}"
    );
    let top = alive
        .iter()
        .fold(f32::NEG_INFINITY, |m, &i| m.max(processed[i]));
    assert!(
        repro_exp(processed[token] - top) > 0.0,
        "drew a token of zero weight"
    );
    let p = softmax64(&processed);
    assert!(p.iter().all(|q| q.is_finite()));
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);

    // Greedy: T = 0, or max / T overflowing (either way).
    let t = s.temperature.unwrap_or(1.0);
    let scaled: Vec<f32> = logits
        .iter()
        .map(|&x| if t == 1.0 { x } else { x / t })
        .collect();
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    if t == 0.0 || !(max / t).is_finite() {
        let g = ranked(&logits.iter().map(|&x| x as f64).collect::<Vec<_>>())[0];
        assert_eq!(alive, [g], "greedy keeps the first largest logit only");
        assert_eq!(token, g);
        return;
    }
    // Survivors keep their scaled logit.
    for &i in &alive {
        assert_eq!(
            processed[i].to_bits(),
            scaled[i].to_bits(),
            "survivor {i} changed"
        );
    }
    // Top-k: exactly the first min(k, finite) of the scaled logits' ranking.
    let keys: Vec<f64> = scaled.iter().map(|&x| x as f64).collect();
    let finite = keys.iter().filter(|&&x| x > f64::NEG_INFINITY).count();
    let kept_k = s.top_k.map_or(finite, |k| k.min(finite));
    let order_k = &ranked(&keys)[..kept_k];
    // Top-p and min-p act on the weights e^(x/T − max) as the library computes
    // them (repro_exp); ties in weight go to the lower id. The survivors are a
    // prefix of the top-k set ranked that way.
    let smax = scaled.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let w: Vec<f64> = scaled.iter().map(|&x| repro_exp(x - smax) as f64).collect();
    let mut order: Vec<usize> = order_k.to_vec();
    order.sort_by(|&a, &b| w[b].partial_cmp(&w[a]).unwrap().then(a.cmp(&b)));
    let m = alive.len();
    let mut prefix = order[..m.min(order.len())].to_vec();
    prefix.sort_unstable();
    assert_eq!(prefix, alive, "survivors are not a prefix of the ranking");

    // How many top-p and min-p may keep, with a rounding margin at boundaries.
    let (mut lo, mut hi) = (kept_k, kept_k);
    const TOL: f64 = 1e-4;
    let total: f64 = order.iter().map(|&i| w[i]).sum();
    if let Some(pp) = s.top_p {
        let cut = |target: f64| -> usize {
            let mut acc = 0.0;
            for (j, &i) in order.iter().enumerate() {
                acc += w[i];
                if acc >= target * total {
                    return j + 1;
                }
            }
            order.len()
        };
        let pp = pp as f64;
        lo = cut(pp - TOL).max(1);
        hi = cut(pp + TOL).max(1);
    }
    if let Some(mp) = s.min_p {
        let wmax = w[order[0]];
        let count = |bound: f64| order.iter().take_while(|&&i| w[i] >= bound * wmax).count();
        let mp = mp as f64;
        lo = lo.min(count(mp + TOL).max(1));
        hi = hi.min(count(mp - TOL).max(1));
    }
    assert!(
        (lo..=hi).contains(&m),
        "kept {m} tokens, the rules allow {lo}..={hi} ({s:?})"
    );
}

/// Top-p on integer weights and p = j/256: every sum and product is exact, so
/// the kept set is exactly the smallest ranked prefix with mass ≥ p.
fn check_dyadic_top_p(inp: &mut Input) {
    let v = inp.range(1, 80);
    let w: Vec<f32> = inp.vec(v, |i| (i.u8() % 17) as f32);
    let j = inp.range(0, 256);
    let p = j as f32 / 256.0;
    let total: u64 = w.iter().map(|&x| x as u64).sum();
    let mut got = w.clone();
    let mut sel = SelectScratchDyn::new(v).unwrap();
    let r = top_p_probs_dyn(&mut got, p, &mut sel);
    if total == 0 {
        assert_eq!(r, Err(Error::NoCandidates));
        return;
    }
    r.unwrap();
    let want: Vec<f32> = if j == 256 {
        w.clone()
    } else {
        let order = ranked(&w.iter().map(|&x| x as f64).collect::<Vec<_>>());
        let mut keep = vec![false; v];
        let mut acc = 0u64;
        for &i in &order {
            keep[i] = true;
            acc += w[i] as u64;
            if acc * 256 >= j as u64 * total {
                break;
            }
        }
        (0..v).map(|i| if keep[i] { w[i] } else { 0.0 }).collect()
    };
    assert_eq!(got, want, "top_p_probs p = {j}/256 on {w:?}");
}

fn assert_same(a: &[f32], b: &[f32], what: &str) {
    let same = a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    assert!(same, "{what}: {a:?} vs {b:?}");
}
