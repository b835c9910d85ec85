//! KV caches: cached decoding ≡ full recomputation, ring buffer ≡ sliding-window
//! mask (token by token and chunked prefill longer than the capacity), bounded
//! CacheFull, truncate, beam reordering, runtime-capacity face.
//!
//! The full recomputation is a plain f64 loop implementation in this file
//! (projections, RoPE-like rotation, causal/windowed softmax attention, output
//! projection), independent of the library's kernels.

mod common;

use common::{Lcg, for_each_backend_and_real};
use constml::attention::*;
use constml::{Backend, Error, Matrix, Real, Simd};

const DM: usize = 16;
const H: usize = 4;
const KVH: usize = 2;
const D: usize = 4;

struct Weights<T> {
    wq: [[[T; DM]; D]; H],
    wk: [[[T; DM]; D]; KVH],
    wv: [[[T; DM]; D]; KVH],
    wo: [[[T; D]; H]; DM],
    bq: [[T; D]; H],
    bo: [T; DM],
}

fn weights<T: Real>() -> Box<Weights<T>> {
    let mut r = Lcg(7);
    let mut f = || T::from_f64(r.unit() - 0.5);
    Box::new(Weights {
        wq: core::array::from_fn(|_| core::array::from_fn(|_| core::array::from_fn(|_| f()))),
        wk: core::array::from_fn(|_| core::array::from_fn(|_| core::array::from_fn(|_| f()))),
        wv: core::array::from_fn(|_| core::array::from_fn(|_| core::array::from_fn(|_| f()))),
        wo: core::array::from_fn(|_| core::array::from_fn(|_| core::array::from_fn(|_| f()))),
        bq: core::array::from_fn(|_| core::array::from_fn(|_| f())),
        bo: core::array::from_fn(|_| f()),
    })
}

fn tokens<T: Real>(n: usize, seed: u64) -> Vec<[T; DM]> {
    let mut r = Lcg(seed);
    (0..n)
        .map(|_| core::array::from_fn(|_| T::from_f64(2.0 * r.unit() - 1.0)))
        .collect()
}

fn layer<'a, T: Real, B: Backend>(
    w: &'a Weights<T>,
) -> CausalSelfAttention<'a, T, DM, H, KVH, D, B> {
    CausalSelfAttention::new(DecoderWeights {
        w_q: &w.wq,
        b_q: Some(&w.bq),
        w_k: &w.wk,
        b_k: None,
        w_v: &w.wv,
        b_v: None,
        w_o: &w.wo,
        b_o: Some(&w.bo),
    })
}

/// `n` tokens (from `seed`) and the full recomputation of their outputs.
fn sequence<T: Real>(
    w: &Weights<T>,
    n: usize,
    seed: u64,
    window: Option<usize>,
) -> (Vec<[T; DM]>, Vec<[f64; DM]>) {
    let xs = tokens::<T>(n, seed);
    let want = naive(w, &xs, window);
    (xs, want)
}

fn r64<T: Real>(x: T) -> f64 {
    <T as Real>::as_f64(x)
}

/// RoPE-like rotation of pairs (2i, 2i+1) by pos·10000^(−2i/d).
fn rope<T: Real>(pos: usize, x: &mut [T]) -> Result<(), Error> {
    let d = x.len();
    for (i, p) in x.chunks_exact_mut(2).enumerate() {
        let th = pos as f64 * 10000f64.powf(-2.0 * i as f64 / d as f64);
        let (s, c) = th.sin_cos();
        let (a, b) = (r64(p[0]), r64(p[1]));
        p[0] = T::from_f64(a * c - b * s);
        p[1] = T::from_f64(a * s + b * c);
    }
    Ok(())
}

/// The plain f64 decoder attention over the whole sequence: output of every
/// position, causal, optionally with a sliding window of `window` keys.
fn naive<T: Real>(w: &Weights<T>, xs: &[[T; DM]], window: Option<usize>) -> Vec<[f64; DM]> {
    let lin = |x: &[T; DM], row: &[T; DM]| -> f64 {
        x.iter().zip(row).map(|(&a, &b)| r64(a) * r64(b)).sum()
    };
    let n = xs.len();
    let mut q = vec![[[0.0f64; D]; H]; n];
    let mut k = vec![[[0.0f64; D]; KVH]; n];
    let mut v = vec![[[0.0f64; D]; KVH]; n];
    for t in 0..n {
        for (h, qh) in q[t].iter_mut().enumerate() {
            for (e, qe) in qh.iter_mut().enumerate() {
                *qe = lin(&xs[t], &w.wq[h][e]) + r64(w.bq[h][e]);
            }
            rope(t, qh).unwrap();
        }
        for g in 0..KVH {
            for e in 0..D {
                k[t][g][e] = lin(&xs[t], &w.wk[g][e]);
                v[t][g][e] = lin(&xs[t], &w.wv[g][e]);
            }
            rope(t, &mut k[t][g]).unwrap();
        }
    }
    let scale = 1.0 / (D as f64).sqrt();
    (0..n)
        .map(|t| {
            let lo = window.map_or(0, |w| (t + 1).saturating_sub(w));
            let mut ctx = [[0.0f64; D]; H];
            for h in 0..H {
                let g = h / (H / KVH);
                let s: Vec<f64> = (lo..=t)
                    .map(|j| (0..D).map(|e| q[t][h][e] * k[j][g][e]).sum::<f64>() * scale)
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let ex: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = ex.iter().sum();
                for (a, j) in ex.iter().zip(lo..=t) {
                    for e in 0..D {
                        ctx[h][e] += a / z * v[j][g][e];
                    }
                }
            }
            core::array::from_fn(|o| {
                (0..H)
                    .flat_map(|h| (0..D).map(move |e| (h, e)))
                    .map(|(h, e)| ctx[h][e] * r64(w.wo[o][h][e]))
                    .sum::<f64>()
                    + r64(w.bo[o])
            })
        })
        .collect()
}

fn tol<T: Real>() -> (f64, f64) {
    if T::BYTES == 4 {
        (2e-5, 2e-6)
    } else {
        (1e-10, 1e-12)
    }
}

#[track_caller]
fn assert_row<T: Real>(what: &str, got: &[T; DM], want: &[f64; DM]) {
    let (r, a) = tol::<T>();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = r64(g);
        assert!(
            (g - w).abs() <= a + r * w.abs(),
            "{what}[{i}]: got {g:e}, want {w:e}"
        );
    }
}

/// One chunk of `N` tokens through the block.
fn chunk<T: Real, B: Backend, const N: usize, const CAP: usize, const S: usize>(
    l: &CausalSelfAttention<'_, T, DM, H, KVH, D, B>,
    cache: &mut KvCache<T, KVH, D, CAP>,
    xs: &[[T; DM]],
) -> Result<Vec<[T; DM]>, Error> {
    chunk_rot::<T, B, N, CAP, S>(l, cache, xs, &rope::<T>)
}

/// One chunk of `N` tokens through the block, rotated by `rot`.
fn chunk_rot<T: Real, B: Backend, const N: usize, const CAP: usize, const S: usize>(
    l: &CausalSelfAttention<'_, T, DM, H, KVH, D, B>,
    cache: &mut KvCache<T, KVH, D, CAP>,
    xs: &[[T; DM]],
    rot: &dyn Rotation<T>,
) -> Result<Vec<[T; DM]>, Error> {
    let x: [[T; DM]; N] = core::array::from_fn(|i| xs[i]);
    let mut scratch = Box::new(DecoderScratch::<T, N, H, KVH, D, S>::new());
    let mut out = [[T::NAN; DM]; N];
    l.forward(&x, cache, rot, &mut scratch, &mut out, &AttnOptions::new())?;
    Ok(out.to_vec())
}

fn cached_decoding<B: Backend, T: Real>() {
    let w = weights::<T>();
    let l = layer::<T, B>(&w);
    let (xs, full) = sequence(&w, 70, 11, None);
    let mut cache = Box::new(KvCache::<T, KVH, D, 80>::new());
    for (t, x) in xs.iter().enumerate() {
        let o = chunk::<T, B, 1, 80, 81>(&l, &mut cache, std::slice::from_ref(x)).unwrap();
        assert_row(&format!("decode step {t} {}", B::NAME), &o[0], &full[t]);
    }
    assert_eq!(cache.next_position(), 70);

    // The same decode with a scratch big enough to stack the 2 query heads of
    // each kv head (S = group · (CAP + 1)).
    let mut stacked = Box::new(KvCache::<T, KVH, D, 80>::new());
    for (t, x) in xs.iter().enumerate().take(20) {
        let o =
            chunk::<T, B, 1, 80, { 2 * 81 }>(&l, &mut stacked, std::slice::from_ref(x)).unwrap();
        assert_row(
            &format!("stacked decode step {t} {}", B::NAME),
            &o[0],
            &full[t],
        );
    }
    // The cache holds exactly the rotated keys of every position.
    let mut k = [T::ZERO; KVH * D];
    for (t, x) in xs.iter().enumerate().step_by(13) {
        let mut q = [[[T::ZERO; D]; H]; 1];
        let mut kk = [[[T::ZERO; D]; KVH]; 1];
        let mut vv = [[[T::ZERO; D]; KVH]; 1];
        l.project(&[*x], &mut q, &mut kk, &mut vv).unwrap();
        rotate_qk(&rope::<T>, t, &mut q, &mut kk).unwrap();
        k.copy_from_slice(kk[0].as_flattened());
        assert_eq!(cache.key(1, t).unwrap(), &k[D..]);
    }

    // Chunked prefill into a bounded cache, then decoding: same outputs.
    let mut cache = Box::new(KvCache::<T, KVH, D, 80>::new());
    let mut outs = chunk::<T, B, 17, 80, 97>(&l, &mut cache, &xs[..17]).unwrap();
    outs.extend(chunk::<T, B, 5, 80, 85>(&l, &mut cache, &xs[17..22]).unwrap());
    for x in &xs[22..30] {
        outs.extend(chunk::<T, B, 1, 80, 81>(&l, &mut cache, std::slice::from_ref(x)).unwrap());
    }
    for (t, o) in outs.iter().enumerate() {
        assert_row(&format!("prefill+decode {t}"), o, &full[t]);
    }
}

#[test]
fn cached_decoding_equals_full_recomputation() {
    for_each_backend_and_real!(cached_decoding);
}

fn ring<B: Backend, T: Real>() {
    const CAP: usize = 8;
    let w = weights::<T>();
    let l = layer::<T, B>(&w);
    let (xs, want) = sequence(&w, 45, 5, Some(CAP));

    // Token by token over more than five wraps.
    let mut cache = KvCache::<T, KVH, D, CAP>::new_ring();
    for (t, x) in xs.iter().enumerate() {
        let o =
            chunk::<T, B, 1, CAP, { CAP + 1 }>(&l, &mut cache, std::slice::from_ref(x)).unwrap();
        assert_row(&format!("ring step {t} {}", B::NAME), &o[0], &want[t]);
        assert_eq!(cache.len(), (t + 1).min(CAP));
    }
    // Every slot reports its absolute position: the last CAP positions.
    let mut held: Vec<usize> = (0..CAP).map(|s| cache.slot_position(s).unwrap()).collect();
    assert_eq!(held[40 % CAP], 40);
    assert_eq!(held[37 % CAP], 37);
    held.sort();
    assert_eq!(held, (37..45).collect::<Vec<_>>());

    // Chunked prefill, chunks longer than the capacity included.
    let mut cache = KvCache::<T, KVH, D, CAP>::new_ring();
    let mut outs = Vec::new();
    let mut at = 0;
    macro_rules! go {
        ($n:literal) => {
            outs.extend(
                chunk::<T, B, $n, CAP, { CAP + $n }>(&l, &mut cache, &xs[at..at + $n]).unwrap(),
            );
            at += $n;
        };
    }
    go!(3);
    go!(13);
    go!(1);
    go!(8);
    go!(5);
    go!(11);
    go!(1);
    go!(3);
    assert_eq!(at, 45);
    for (t, o) in outs.iter().enumerate() {
        assert_row(&format!("ring chunked {t} {}", B::NAME), o, &want[t]);
    }
    assert_eq!((cache.oldest_position(), cache.next_position()), (37, 45));
}

#[test]
fn ring_buffer_equals_sliding_window_recomputation() {
    for_each_backend_and_real!(ring);
}

/// The library's RoPE (`position::Rope`, interleaved, θ = 10 000 — the
/// rotation the f64 recomputation applies) through the decoder hook over a
/// ring buffer: token by token over five wraps and in chunks, on the fly and
/// from a table shorter than the sequence (positions past it computed).
fn ring_rope<B: Backend, T: Real>() {
    use constml::position::{BeyondTable, Rope, RopeConfig, RopeLayout, RopeTable};
    const CAP: usize = 8;
    let w = weights::<T>();
    let l = layer::<T, B>(&w);
    let (xs, want) = sequence(&w, 45, 5, Some(CAP));
    let rope = Rope::<T, D, B>::new(RopeConfig::new(RopeLayout::Interleaved)).unwrap();
    let (mut cos, mut sin) = ([[T::ZERO; D]; 16], [[T::ZERO; D]; 16]);
    let table = RopeTable::new(rope, &mut cos, &mut sin, BeyondTable::Compute);
    for rot in [&rope as &dyn Rotation<T>, &table] {
        let mut cache = KvCache::<T, KVH, D, CAP>::new_ring();
        for (t, x) in xs.iter().enumerate() {
            let o = chunk_rot::<T, B, 1, CAP, { CAP + 1 }>(
                &l,
                &mut cache,
                std::slice::from_ref(x),
                rot,
            )
            .unwrap();
            assert_row(&format!("ring RoPE step {t} {}", B::NAME), &o[0], &want[t]);
        }
        let mut cache = KvCache::<T, KVH, D, CAP>::new_ring();
        let mut outs =
            chunk_rot::<T, B, 13, CAP, { CAP + 13 }>(&l, &mut cache, &xs[..13], rot).unwrap();
        outs.extend(
            chunk_rot::<T, B, 20, CAP, { CAP + 20 }>(&l, &mut cache, &xs[13..33], rot).unwrap(),
        );
        for x in &xs[33..] {
            outs.extend(
                chunk_rot::<T, B, 1, CAP, { CAP + 1 }>(
                    &l,
                    &mut cache,
                    std::slice::from_ref(x),
                    rot,
                )
                .unwrap(),
            );
        }
        for (t, o) in outs.iter().enumerate() {
            assert_row(&format!("ring RoPE chunked {t} {}", B::NAME), o, &want[t]);
        }
    }
    // A table that refuses positions past it stops the decoder with an error.
    let strict = RopeTable::new(rope, &mut cos, &mut sin, BeyondTable::Error);
    let mut cache = KvCache::<T, KVH, D, CAP>::new_ring();
    chunk_rot::<T, B, 16, CAP, { CAP + 16 }>(&l, &mut cache, &xs[..16], &strict).unwrap();
    let e =
        chunk_rot::<T, B, 1, CAP, { CAP + 1 }>(&l, &mut cache, &xs[16..17], &strict).unwrap_err();
    assert!(
        matches!(
            e,
            Error::OutOfRange {
                index: 16,
                len: 16,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        cache.next_position(),
        16,
        "the failed step left the cache unchanged"
    );
}

#[test]
fn ring_buffer_with_library_rope_equals_recomputation() {
    for_each_backend_and_real!(ring_rope);
}

/// The pieces one by one, in the seam's order (append, then attend) for single
/// tokens; appending a multi-token chunk into a full ring before attending is
/// refused, not silently wrong.
#[test]
fn pieces_append_then_attend() {
    const CAP: usize = 6;
    let w = weights::<f64>();
    let l = layer::<f64, Simd>(&w);
    let (xs, want) = sequence(&w, 20, 3, Some(CAP));
    let mut cache = KvCache::<f64, KVH, D, CAP>::new_ring();
    let mut s = DecoderScratch::<f64, 1, H, KVH, D, CAP>::new();
    for (t, x) in xs.iter().enumerate() {
        l.project(&[*x], &mut s.q, &mut s.k, &mut s.v).unwrap();
        rotate_qk(&rope::<f64>, t, &mut s.q, &mut s.k).unwrap();
        assert_eq!(cache.append_chunk(&s.k, &s.v).unwrap(), t);
        attend_cache(
            &s.q,
            t,
            &cache,
            None,
            &mut s.ctx,
            &mut s.scores,
            WeightsOut::None,
            &AttnOptions::new(),
        )
        .unwrap();
        let mut out = [[0.0; DM]];
        l.out_proj(&s.ctx, &mut out).unwrap();
        assert_row(&format!("pieces {t}"), &out[0], &want[t]);
    }
    // A chunk of 2 appended first overwrites keys 14 and 15 (slots 2 and 3);
    // query 20's window is 15..=20.
    let mut s2 = DecoderScratch::<f64, 2, H, KVH, D, CAP>::new();
    cache.append_chunk(&s2.k, &s2.v).unwrap();
    let e = attend_cache(
        &s2.q,
        20,
        &cache,
        None,
        &mut s2.ctx,
        &mut s2.scores,
        WeightsOut::None,
        &AttnOptions::new(),
    );
    assert_eq!(
        e,
        Err(Error::PositionNotHeld {
            position: 15,
            oldest: 16,
            next: 22
        })
    );
    // Queries newer than the newest key are refused.
    assert!(
        attend_cache(
            &s2.q,
            21,
            &cache,
            None,
            &mut s2.ctx,
            &mut s2.scores,
            WeightsOut::None,
            &AttnOptions::new()
        )
        .is_err()
    );
}

#[test]
fn bounded_cache_full_and_truncate() {
    const CAP: usize = 10;
    let w = weights::<f64>();
    let l = layer::<f64, Simd>(&w);
    let (xs, full) = sequence(&w, 12, 9, None);
    let mut cache = KvCache::<f64, KVH, D, CAP>::new();
    let outs = chunk::<f64, Simd, 7, CAP, 17>(&l, &mut cache, &xs[..7]).unwrap();
    // 7 + 4 > 10: refused, nothing appended.
    assert_eq!(
        chunk::<f64, Simd, 4, CAP, 14>(&l, &mut cache, &xs[7..11]),
        Err(Error::CacheFull { capacity: CAP })
    );
    assert_eq!(cache.next_position(), 7);
    let more = chunk::<f64, Simd, 3, CAP, 13>(&l, &mut cache, &xs[7..10]).unwrap();
    assert_eq!(cache.len(), CAP);
    assert_eq!(
        chunk::<f64, Simd, 1, CAP, 11>(&l, &mut cache, &xs[10..11]),
        Err(Error::CacheFull { capacity: CAP })
    );
    assert_eq!(
        cache.append(&[[0.0; D]; KVH], &[[0.0; D]; KVH]),
        Err(Error::CacheFull { capacity: CAP })
    );
    for (t, o) in outs.iter().chain(&more).enumerate() {
        assert_row(&format!("bounded {t}"), o, &full[t]);
    }

    // Truncate to 4 and decode positions 4.. again: same outputs (rollback).
    assert_eq!(
        cache.truncate(11),
        Err(Error::PositionNotHeld {
            position: 11,
            oldest: 0,
            next: 10
        })
    );
    cache.truncate(4).unwrap();
    assert_eq!((cache.len(), cache.next_position()), (4, 4));
    assert_eq!(cache.key(0, 5), None);
    for t in 4..9 {
        let o = chunk::<f64, Simd, 1, CAP, 11>(&l, &mut cache, &xs[t..t + 1]).unwrap();
        assert_row(&format!("after truncate {t}"), &o[0], &full[t]);
    }
    cache.reset();
    assert!(cache.is_empty() && cache.next_position() == 0);

    // Ring: truncation can only keep what is still held.
    let mut ring = KvCache::<f64, 1, 1, 4>::new_ring();
    for p in 0..9 {
        ring.append(&[[p as f64]], &[[p as f64]]).unwrap();
    }
    assert_eq!(
        ring.truncate(4),
        Err(Error::PositionNotHeld {
            position: 4,
            oldest: 5,
            next: 9
        })
    );
    ring.truncate(7).unwrap();
    assert_eq!((ring.oldest_position(), ring.next_position()), (5, 7));
    ring.append(&[[70.0]], &[[70.0]]).unwrap();
    assert_eq!(ring.key(0, 7), Some(&[70.0][..]));
    assert_eq!(ring.key(0, 5), Some(&[5.0][..]));
    assert_eq!(ring.slot_position(0), None); // slot 0 held position 8, dropped by the truncate
}

#[test]
fn beam_reorder() {
    const CAP: usize = 12;
    let w = weights::<f64>();
    let l = layer::<f64, Simd>(&w);
    // Three beams with different histories (8 tokens each).
    let mut hist: Vec<Vec<[f64; DM]>> = (0..3).map(|b| tokens::<f64>(8, 100 + b)).collect();
    let mut beams: Vec<KvCache<f64, KVH, D, CAP>> = (0..3).map(|_| KvCache::new()).collect();
    for (b, c) in beams.iter_mut().enumerate() {
        chunk::<f64, Simd, 8, CAP, 20>(&l, c, &hist[b]).unwrap();
    }
    // Duplicates with a dropped beam, a 3-cycle, a swap, all from one.
    for parents in [[2usize, 0, 0], [1, 2, 0], [1, 0, 2], [2, 2, 2], [0, 1, 2]] {
        let before: Vec<Vec<f64>> = beams
            .iter()
            .map(|c| c.key(0, 3).unwrap().to_vec())
            .collect();
        reorder_beams(&mut beams, &parents).unwrap();
        hist = parents.iter().map(|&p| hist[p].clone()).collect();
        for i in 0..3 {
            assert_eq!(
                beams[i].key(0, 3).unwrap(),
                &before[parents[i]][..],
                "parents {parents:?}"
            );
            // Continuing beam i equals recomputing its history plus a new token.
            let next = tokens::<f64>(1, 999 + i as u64)[0];
            let mut seq = hist[i].clone();
            seq.push(next);
            let want = naive(&w, &seq, None);
            let mut c = beams[i].clone();
            let o = chunk::<f64, Simd, 1, CAP, 13>(&l, &mut c, &[next]).unwrap();
            assert_row(&format!("beam {i} after {parents:?}"), &o[0], &want[8]);
        }
    }
    assert!(reorder_beams(&mut beams, &[0, 1]).is_err());
    assert!(reorder_beams(&mut beams, &[0, 1, 3]).is_err());
    let mut mixed = vec![
        KvCacheDyn::<f64>::new(KVH, D, CAP, CachePolicy::Bounded).unwrap(),
        KvCacheDyn::new(KVH, D, CAP, CachePolicy::Ring).unwrap(),
    ];
    assert!(reorder_beams(&mut mixed, &[1, 0]).is_err());
}

#[test]
fn runtime_capacity_face_matches_const_face() {
    let w = weights::<f64>();
    let (xs, want) = sequence(&w, 30, 21, Some(7));
    let mat = |a: &[[[f64; DM]; D]]| {
        Matrix::from_vec(
            a.len() * D,
            DM,
            a.iter()
                .flat_map(|h| h.as_flattened().iter().copied())
                .collect(),
        )
        .unwrap()
    };
    let dynl = CausalSelfAttentionDyn::<f64>::new(MhaWeightsDyn {
        heads: H,
        kv_heads: KVH,
        w_q: mat(&w.wq),
        b_q: Some(w.bq.as_flattened().to_vec()),
        w_k: mat(&w.wk),
        b_k: None,
        w_v: mat(&w.wv),
        b_v: None,
        w_o: Matrix::from_vec(
            DM,
            H * D,
            w.wo.iter()
                .flat_map(|r| r.as_flattened().iter().copied())
                .collect(),
        )
        .unwrap(),
        b_o: Some(w.bo.to_vec()),
    });
    let mut cache = KvCacheDyn::new(KVH, D, 7, CachePolicy::Ring).unwrap();
    let bytes = cache.bytes();
    let mut at = 0;
    for n in [4usize, 9, 1, 1, 15] {
        let x =
            Matrix::from_vec(n, DM, xs[at..at + n].iter().flatten().copied().collect()).unwrap();
        let o = dynl
            .forward(&x, &mut cache, &rope::<f64>, &AttnOptions::new())
            .unwrap();
        for i in 0..n {
            let row: [f64; DM] = o.row(i).unwrap().try_into().unwrap();
            assert_row(&format!("dyn ring {}", at + i), &row, &want[at + i]);
        }
        at += n;
    }
    assert_eq!(cache.bytes(), bytes); // never grown
    assert_eq!(cache.len(), 7);
    // Mismatched shapes in the runtime face are errors.
    let bad = Matrix::from_vec(1, DM + 1, vec![0.0; DM + 1]).unwrap();
    assert!(
        dynl.forward(&bad, &mut cache, &NoRotation, &AttnOptions::new())
            .is_err()
    );
    let mut wrong_heads = KvCacheDyn::new(1, D, 7, CachePolicy::Ring).unwrap();
    let x = Matrix::from_vec(1, DM, xs[0].to_vec()).unwrap();
    assert!(
        dynl.forward(&x, &mut wrong_heads, &NoRotation, &AttnOptions::new())
            .is_err()
    );
    assert!(KvCacheDyn::<f64>::new(usize::MAX, 2, 2, CachePolicy::Bounded).is_err());
    let mut c = KvCacheDyn::<f64>::new(2, 2, 2, CachePolicy::Bounded).unwrap();
    assert!(c.append_token(&[0.0; 3], &[0.0; 4]).is_err());
}

/// A table-based rotation past its table returns an error through the block.
#[test]
fn rotation_errors_propagate() {
    let w = weights::<f64>();
    let l = layer::<f64, Simd>(&w);
    let table_len = 3;
    let rot = |pos: usize, _x: &mut [f64]| {
        if pos < table_len {
            Ok(())
        } else {
            Err(Error::OutOfRange {
                what: "rope table",
                index: pos,
                len: table_len,
            })
        }
    };
    let mut cache = KvCache::<f64, KVH, D, 8>::new();
    let mut s = DecoderScratch::<f64, 1, H, KVH, D, 9>::new();
    let mut out = [[0.0; DM]];
    for _ in 0..3 {
        l.forward(
            &[[0.1; DM]],
            &mut cache,
            &rot,
            &mut s,
            &mut out,
            &AttnOptions::new(),
        )
        .unwrap();
    }
    let e = l.forward(
        &[[0.1; DM]],
        &mut cache,
        &rot,
        &mut s,
        &mut out,
        &AttnOptions::new(),
    );
    assert_eq!(
        e,
        Err(Error::OutOfRange {
            what: "rope table",
            index: 3,
            len: 3
        })
    );
    assert_eq!(cache.next_position(), 3);
}
