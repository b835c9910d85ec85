//! The checkpoint and tokenizer loaders on arbitrary bytes.
//!
//! No panic, and no allocation beyond what the bytes themselves justify: the
//! run script sets libFuzzer's `-malloc_limit_mb`, so a lying header that makes
//! a loader reserve gigabytes is a finding. Beyond that: a checkpoint that
//! loads has weights that fit its configuration, runs a forward step, and
//! (f32) re-exports to Q8_0 bytes that load back with the same configuration;
//! a Q8_0 matrix view answers every in-range query and none beyond; a
//! tokenizer that loads answers every id below its vocabulary (and none
//! beyond) and encodes to ids below it.
#![no_main]
// Index loops mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use constml::models::quant::{Q8Matrix, Q8Scratch};
use constml::models::{
    Llama, Llama2cCheckpoint, Llama2cQ8Checkpoint, LlamaQ8, LlamaState, LogitRows, Tokenizer,
    llama_q8_scratch_len, llama2c_config, llama2c_q8_export, llama2c_q8_header,
};
use constml_fuzz::{Input, stat};
use libfuzzer_sys::fuzz_target;

/// States larger than this (elements) are not built: the caller sizes the
/// arena, and a header may ask for a long context legitimately.
const ARENA_MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let which = inp.u8() % 4;
    let tok = inp.u32() as usize;
    let bytes = inp.rest();
    match which {
        0 => f32_checkpoint(bytes, tok),
        1 => q8_checkpoint(bytes, tok),
        2 => tokenizer(bytes, tok),
        _ => q8_matrix(bytes, tok),
    }
});

fn f32_checkpoint(bytes: &[u8], tok: usize) {
    let _ = llama2c_config(bytes);
    let Ok(ck) = Llama2cCheckpoint::from_bytes(bytes) else {
        return;
    };
    stat("f32 checkpoint loaded");
    let cfg = *ck.config();
    assert!(ck.weight_bytes() <= bytes.len());
    let w = ck.weights().expect("a loaded checkpoint has its weights");
    let model = Llama::<f32>::new(cfg, w).expect("and they fit its configuration");
    if cfg.state_len(1) <= ARENA_MAX {
        let mut arena = vec![0.0f32; cfg.state_len(1)];
        let mut state = LlamaState::new(&cfg, 1, &mut arena).unwrap();
        model
            .forward(&[tok % cfg.vocab_size], &mut state, LogitRows::Last)
            .unwrap();
        assert!(
            model
                .forward(&[cfg.vocab_size], &mut state, LogitRows::Last)
                .is_err()
        );
        stat("f32 forward");
    }
    for gs in [1, 2, cfg.dim] {
        if let Ok(q8) = llama2c_q8_export(&cfg, &w, gs) {
            let back = Llama2cQ8Checkpoint::from_vec(q8).expect("an export loads back");
            assert_eq!(*back.config(), cfg);
            assert_eq!(back.group_size(), gs);
            stat("re-exported to Q8_0");
        }
    }
}

fn q8_checkpoint(bytes: &[u8], tok: usize) {
    let _ = llama2c_q8_header(bytes);
    let Ok(ck) = Llama2cQ8Checkpoint::from_vec(bytes.to_vec()) else {
        return;
    };
    stat("q8 checkpoint loaded");
    let cfg = *ck.config();
    let w = ck.weights().expect("a loaded checkpoint has its weights");
    let model = LlamaQ8::<constml::Simd>::new(cfg, w).expect("and they fit its configuration");
    if cfg.state_len(1) <= ARENA_MAX {
        let mut arena = vec![0.0f32; cfg.state_len(1)];
        let mut state = LlamaState::new(&cfg, 1, &mut arena).unwrap();
        let (nq, ns) = llama_q8_scratch_len(&cfg, ck.group_size());
        let (mut q, mut s) = (vec![0i8; nq], vec![0.0f32; ns]);
        let mut scratch = Q8Scratch {
            q: &mut q,
            s: &mut s,
        };
        // Weights from arbitrary bytes may make activations non-finite, which
        // the on-the-fly quantization reports: Ok or that error, no panic.
        let _ = model.forward(
            &[tok % cfg.vocab_size],
            &mut state,
            &mut scratch,
            LogitRows::Last,
        );
        stat("q8 forward");
    }
}

fn tokenizer(bytes: &[u8], vocab: usize) {
    let vocab = vocab % 600;
    let Ok(t) = Tokenizer::from_bytes(bytes, vocab) else {
        return;
    };
    stat("tokenizer loaded");
    assert_eq!(t.vocab_size(), vocab);
    for id in 0..vocab {
        let p = t.piece(id).expect("every id has a piece");
        assert!(p.len() <= t.max_token_length().max(p.len()));
        assert!(t.score(id).is_some());
        assert!(t.decode(id.saturating_sub(1), id).is_ok());
        if let Some(found) = t.lookup(p) {
            assert!(found < vocab && t.piece(found) == Some(p));
        }
    }
    assert!(t.piece(vocab).is_none() && t.score(vocab).is_none());
    assert!(t.decode(0, vocab).is_err());
    let text = bytes.get(bytes.len().saturating_sub(48)..).unwrap_or(&[]);
    if let Ok(ids) = t.encode_bytes(text, true, true) {
        assert!(ids.iter().all(|&i| i < vocab), "{ids:?}");
        stat("encoded the input's tail");
    }
    // With llama2.c's byte pieces in place (id b + 3 is "<0xXX>", which its
    // encoder assumes for bytes without a piece), plain text without '<'
    // cannot merge into a byte-fallback piece, so decoding what encoding gives
    // returns the text (a dummy space in front, dropped again after BOS).
    let plain = "Once upon a time, Lily saw 3 big dogs. They ran!";
    let bytes_ok =
        vocab >= 259 && (0..256).all(|b| t.piece(b + 3) == Some(format!("<0x{b:02X}>").as_bytes()));
    if let (true, Ok(ids)) = (bytes_ok, t.encode(plain, true, false)) {
        assert_eq!(ids.first(), Some(&1), "BOS first");
        let mut back = Vec::new();
        for w in ids.windows(2) {
            back.extend_from_slice(t.decode(w[0], w[1]).unwrap());
        }
        assert_eq!(back, plain.as_bytes(), "round trip through {ids:?}");
        stat("round trip");
    }
}

fn q8_matrix(bytes: &[u8], shape: usize) {
    let rows = shape % 7;
    let cols = (shape >> 3) % 33;
    let gs = (shape >> 9) % 34;
    let nq = (shape >> 16) % (bytes.len() + 1);
    let (q, s) = bytes.split_at(nq);
    let Ok(m) = Q8Matrix::new(q, s, rows, cols, gs) else {
        return;
    };
    stat("q8 matrix");
    assert_eq!((m.shape(), m.group_size()), ((rows, cols), gs));
    let groups = (rows * cols).checked_div(gs).unwrap_or(0);
    for g in 0..groups {
        let sc = m.scale(g).expect("scale in range");
        assert!(sc.is_finite() && sc >= 0.0);
    }
    assert!(m.scale(groups).is_none());
    for i in 0..rows * cols {
        assert!(m.value(i).is_some());
    }
    assert!(m.value(rows * cols).is_none());
    let mut out = vec![0.0f32; cols];
    for r in 0..rows {
        m.dequantize_row(r, &mut out).unwrap();
        assert!(out.iter().all(|v| v.is_finite()));
    }
    assert!(m.dequantize_row(rows, &mut out).is_err());
}
