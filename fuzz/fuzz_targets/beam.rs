//! Beam search over an arbitrary score table, against a plain sort-based
//! implementation of the same Hugging Face procedure and an exhaustive search.
//!
//! The model: next-token logits `A[pos mod 3][last token] + B[token before it]`,
//! one state (the last two tokens) per beam, so `reorder` matters. Invariants:
//! every returned hypothesis is a valid sequence (ids < V, EOS only at the end,
//! at most MAX_NEW tokens) whose score equals its recomputed length-normalised
//! log-probability; the best score is never above the exhaustive optimum; and
//! where no ranking decision of the reference is within rounding of a tie, the
//! hypotheses and their count equal the reference's.
#![no_main]
// Index loops mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use constml::decode::{BeamConfig, BeamModel, BeamScratchDyn, EarlyStopping, HypothesesDyn};
use constml::decode::{beam_search_dyn, beam_search_dyn_with};
use constml::{Error, Result, Scalar};
use constml_fuzz::{Input, stat};
use libfuzzer_sys::fuzz_target;

struct Table {
    v: usize,
    a: Vec<f32>, // (3, V, V)
    b: Vec<f32>, // (V + 1, V); row V: no token before
    state: Vec<(usize, usize)>,
}

impl Table {
    fn logits(&self, pos: usize, last: usize, before: usize, out: &mut [f32]) {
        let v = self.v;
        let a = &self.a[((pos % 3) * v + last) * v..][..v];
        let b = &self.b[before * v..][..v];
        for j in 0..v {
            out[j] = a[j] + b[j];
        }
    }
}

impl BeamModel<f32> for Table {
    fn step(&mut self, beam: usize, token: usize, pos: usize, logits: &mut [f32]) -> Result<()> {
        let before = if pos == 0 { self.v } else { self.state[beam].1 };
        self.state[beam] = (before, token);
        self.logits(pos, token, before, logits);
        Ok(())
    }
    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        let old = self.state.clone();
        for (s, &p) in self.state.iter_mut().zip(parents) {
            *s = old[p];
        }
        Ok(())
    }
}

struct Case {
    v: usize,
    beams: usize,
    max_new: usize,
    prompt: Vec<usize>,
    eos: Vec<usize>,
    lp: f32,
    stop: EarlyStopping,
    num_return: usize,
}

/// Log-softmax in f64 of the logits after `history` (prompt and new tokens).
fn log_probs(t: &Table, history: &[usize]) -> Vec<f64> {
    let n = history.len();
    let before = if n >= 2 { history[n - 2] } else { t.v };
    let mut x = vec![0.0f32; t.v];
    t.logits(n - 1, history[n - 1], before, &mut x);
    let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let s: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum();
    x.iter().map(|&v| v as f64 - m - s.ln()).collect()
}

fn normalised(sum: f64, n: usize, lp: f64) -> f64 {
    sum / (n as f64).powf(lp)
}

/// The largest factor `1 / n^lp` a finished score's sum is scaled by.
fn worst_scale(c: &Case) -> f64 {
    (1..=c.max_new)
        .map(|n| 1.0 / (n as f64).powf(c.lp as f64))
        .fold(1.0, f64::max)
}

/// Whether `got` (from f32 arithmetic) matches `want`: each log-softmax in
/// f32 is off by a few ulp of the logits' size (about 1e-6 here, the logits are
/// at most 16 in magnitude), sums of up to MAX_NEW of them, scaled by the
/// length normalisation.
fn same_score(got: f32, want: f64, c: &Case) -> bool {
    (got as f64 - want).abs() <= 5e-5 * worst_scale(c) + 1e-5 * want.abs()
}

/// Hugging Face's procedure written plainly (constml's documented variant:
/// candidates of −∞ are absent). Returns the hypotheses, best first, and the
/// smallest gap between two scores whose order decided something.
fn reference(t: &Table, c: &Case) -> (Vec<(Vec<usize>, f64)>, f64) {
    let lp = c.lp as f64;
    let gap = core::cell::Cell::new(f64::INFINITY);
    // Normalised scores carry the rounding of the sums times up to `k`.
    let k = worst_scale(c);
    let note_sum = |a: f64, b: f64, scale: f64| {
        if a.is_finite() && b.is_finite() {
            gap.set(gap.get().min((a - b).abs() / scale));
        }
    };
    let note = |a: f64, b: f64| note_sum(a, b, k);
    let mut running: Vec<(Vec<usize>, f64)> = vec![(vec![], 0.0)];
    let mut finished: Vec<(Vec<usize>, f64)> = vec![];
    let keep = 2.max(1 + c.eos.len()) * c.beams;
    for step in 0..c.max_new {
        let mut cands = vec![];
        for (bi, (toks, score)) in running.iter().enumerate() {
            let mut h = c.prompt.clone();
            h.extend(toks);
            for (tok, l) in log_probs(t, &h).into_iter().enumerate() {
                if l > f64::NEG_INFINITY {
                    cands.push((score + l, bi * c.v + tok, bi, tok));
                }
            }
        }
        if cands.is_empty() {
            break;
        }
        cands.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap().then(x.1.cmp(&y.1)));
        for w in cands.windows(2).take(keep + 1) {
            note_sum(w[0].0, w[1].0, 1.0);
        }
        let last = step + 1 == c.max_new;
        let mut next = vec![];
        for (rank, &(s, _, bi, tok)) in cands.iter().take(keep).enumerate() {
            let mut seq = running[bi].0.clone();
            seq.push(tok);
            if last || c.eos.contains(&tok) {
                if rank < c.beams {
                    let sc = normalised(s, step + 1, lp);
                    for f in &finished {
                        note(f.1, sc);
                    }
                    if finished.len() < c.beams {
                        finished.push((seq, sc));
                    } else {
                        let (wi, worst) = finished
                            .iter()
                            .enumerate()
                            .min_by(|a, b| a.1.1.partial_cmp(&b.1.1).unwrap())
                            .map(|(i, f)| (i, f.1))
                            .unwrap();
                        if sc > worst {
                            finished[wi] = (seq, sc);
                        }
                    }
                }
            } else if next.len() < c.beams {
                next.push((seq, s));
            }
        }
        if last || next.is_empty() {
            break;
        }
        running = next;
        if finished.len() == c.beams {
            if c.stop == EarlyStopping::Eager {
                break;
            }
            let len = if c.stop == EarlyStopping::Never && lp > 0.0 {
                c.max_new
            } else {
                step + 1
            };
            let best = normalised(running[0].1, len, lp);
            let worst = finished.iter().map(|f| f.1).fold(f64::INFINITY, f64::min);
            note(best, worst);
            if best <= worst {
                break;
            }
        }
    }
    finished.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
    finished.truncate(c.num_return);
    (finished, gap.get())
}

/// The best length-normalised score over every sequence beam search could
/// return (EOS-terminated, or MAX_NEW long).
fn exhaustive(t: &Table, c: &Case) -> f64 {
    fn go(t: &Table, c: &Case, seq: &mut Vec<usize>, sum: f64, best: &mut f64) {
        let mut h = c.prompt.clone();
        h.extend(seq.iter());
        let n = seq.len() + 1;
        for (tok, l) in log_probs(t, &h).into_iter().enumerate() {
            if l == f64::NEG_INFINITY {
                continue;
            }
            let s = sum + l;
            if n == c.max_new || c.eos.contains(&tok) {
                *best = best.max(normalised(s, n, c.lp as f64));
            } else {
                seq.push(tok);
                go(t, c, seq, s, best);
                seq.pop();
            }
        }
    }
    let mut best = f64::NEG_INFINITY;
    go(t, c, &mut vec![], 0.0, &mut best);
    best
}

/// The length-normalised log-probability of `seq` after the prompt.
fn rescore(t: &Table, c: &Case, seq: &[usize]) -> f64 {
    let mut h = c.prompt.clone();
    let mut sum = 0.0;
    for &tok in seq {
        sum += log_probs(t, &h)[tok];
        h.push(tok);
    }
    normalised(sum, seq.len(), c.lp as f64)
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let v = inp.range(1, 5);
    let beams = inp.range(1, 3);
    let max_new = inp.range(1, 4);
    let plen = inp.range(1, 3);
    let prompt = inp.vec(plen, |i| i.range(0, v - 1));
    let neos = inp.range(0, 2).min(v);
    let eos = inp.vec(neos, |i| i.range(0, v - 1));
    let lp = match inp.u8() % 6 {
        0 => 0.0,
        1 => -1.0,
        2 => 2.0,
        3 => 0.5,
        4 => inp.small_f32(),
        _ => 1.0,
    };
    let stop = match inp.u8() % 3 {
        0 => EarlyStopping::Eager,
        1 => EarlyStopping::Never,
        _ => EarlyStopping::Heuristic,
    };
    let num_return = inp.range(1, beams);
    let sparse = inp.bool();
    let mut entry = |i: &mut Input| {
        if sparse && i.u8() < 30 {
            f32::NEG_INFINITY
        } else {
            i.fine_f32()
        }
    };
    let mut a = inp.vec(3 * v * v, &mut entry);
    let b = inp.vec((v + 1) * v, |i| i.fine_f32());
    // At least one finite logit per row (a row of −∞ is the model's bug).
    for row in a.chunks_mut(v) {
        if row.iter().all(|x| *x == f32::NEG_INFINITY) {
            row[0] = 0.0;
        }
    }
    let case = Case {
        v,
        beams,
        max_new,
        prompt,
        eos,
        lp,
        stop,
        num_return,
    };
    let mut model = Table {
        v,
        a,
        b,
        state: vec![(0, 0); beams],
    };
    let cfg = BeamConfig::new(&case.eos[..])
        .with_length_penalty(lp)
        .with_early_stopping(stop)
        .with_num_return(num_return);
    let mut scratch = BeamScratchDyn::new(v, beams, max_new).unwrap();
    let mut out = HypothesesDyn::new(beams, max_new).unwrap();
    if std::env::var_os("FUZZ_DEBUG").is_some() {
        eprintln!(
            "v {v} beams {beams} max_new {max_new} prompt {:?} eos {:?} lp {lp} {stop:?} a {:?} b {:?}",
            case.prompt, case.eos, model.a, model.b
        );
    }
    let got = beam_search_dyn(&mut model, &case.prompt, &cfg, &mut scratch, &mut out);
    stat(if got.is_ok() { "ok" } else { "err" });
    let n = match got {
        Ok(n) => n,
        Err(Error::NoCandidates) => 0,
        Err(e) => panic!("unexpected error {e:?}"),
    };
    let hyps: Vec<(Vec<usize>, f32)> = out.iter().map(|(t, s)| (t.to_vec(), s)).collect();
    assert_eq!(hyps.len(), n);

    // Scalar gives the same hypotheses within rounding.
    let mut out_s = HypothesesDyn::new(beams, max_new).unwrap();
    let got_s = beam_search_dyn_with::<Scalar, f32>(
        &mut model,
        &case.prompt,
        &cfg,
        &mut scratch,
        &mut out_s,
    );

    // Each hypothesis is a valid sequence with its true score.
    for (seq, s) in &hyps {
        assert!(!seq.is_empty() && seq.len() <= max_new, "{seq:?}");
        assert!(seq.iter().all(|&t| t < v));
        assert!(
            seq[..seq.len() - 1].iter().all(|t| !case.eos.contains(t)),
            "EOS inside {seq:?}"
        );
        assert!(
            seq.len() == max_new || case.eos.contains(seq.last().unwrap()),
            "{seq:?} unfinished"
        );
        let want = rescore(&model, &case, seq);
        assert!(same_score(*s, want, &case), "score {s} vs {want}");
    }
    for w in hyps.windows(2) {
        assert!(w[0].1 >= w[1].1, "not best first");
    }
    let opt = exhaustive(&model, &case);
    if let Some((_, best)) = hyps.first() {
        assert!(
            *best as f64 <= opt || same_score(*best, opt, &case),
            "{best} above optimum {opt}"
        );
    }

    let (want, gap) = reference(&model, &case);
    if gap > 1e-3 {
        stat("compared with the reference");
        assert_eq!(n, want.len(), "count: got {hyps:?}, reference {want:?}");
        for ((seq, s), (wseq, ws)) in hyps.iter().zip(&want) {
            assert_eq!(seq, wseq, "got {hyps:?}, reference {want:?}");
            assert!(same_score(*s, *ws, &case));
        }
        let ns = got_s.unwrap_or(0);
        assert_eq!(ns, n);
        for ((a, _), (b, _)) in out_s.iter().zip(&hyps) {
            assert_eq!(a, &b[..], "Scalar and Simd differ");
        }
    }
});
