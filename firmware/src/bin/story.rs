//! The repo's trained story model (`examples/story`: a 492k-parameter Llama in
//! llama2.c format, 1.99 MB of f32 weights) generating text on a Cortex-M4F
//! (QEMU `mps2-an386`), with its weights in flash and its state in `.bss`.
//!
//! The pattern to copy:
//! - weights: `static WEIGHTS: [f32; N] = f32_le(include_bytes!(..), 28)`,
//!   decoded at compile time into `.rodata` (flash), aligned, no `unsafe`;
//! - state: one `[f32; STATE]` arena handed out once by `cortex_m::singleton!`
//!   (a critical section; no `static mut` reference, no `unsafe`), placed in
//!   `.bss` because its initialiser is constant;
//! - everything else on the stack, sized at compile time.
//!
//! It first decodes greedily from the reference prompt and checks the tokens
//! against PyTorch's (`tests/reference/story.bin`), then samples a story with a
//! seeded sampler, and reports instructions per token: run under
//! `qemu-system-arm -icount shift=0`, where every instruction advances virtual
//! time by exactly 1 ns, the board's 25 MHz timer ticks once per 40
//! instructions (`firmware/run-tests story`). Exits non-zero if anything fails.
#![no_std]
#![no_main]

#[path = "../../../tests/common/refvec.rs"]
mod refvec;

use constml::decode::{Sampler, SamplerScratch, greedy};
use constml::models::{Llama, LlamaState, LogitRows, llama2c_config, llama2c_weights};
use constml::{Backend, Error, Scalar, Simd};
use constml_firmware::story::{CFG, CHUNK, V, instructions, one_row, show};
use constml_firmware::{print, println, timer};
use cortex_m_rt::entry;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

// `const`, not `static`: the bytes are only read at compile time (into
// `WEIGHTS` and `HEADER`), so the raw file is not kept in flash beside them.
const MODEL: &[u8] = include_bytes!("../../../examples/story/model.bin");
/// The llama2.c header (7 little-endian i32).
const HEADER: [u8; 28] = *MODEL.first_chunk::<28>().expect("a 28-byte header");
// The prompt and PyTorch's greedy tokens (a subset of tests/reference/story.bin
// that build.rs writes).
static REFERENCE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/story.bin"));

/// The state arena: KV cache for all 256 positions and the activations.
const STATE: usize = CFG.state_len(CHUNK);
/// f32 words after the 28-byte header.
const FLOATS: usize = (MODEL.len() - 28) / 4;

// Long but finite: 497k little-endian floats decoded by the const evaluator.
#[allow(long_running_const_eval)]
static WEIGHTS: [f32; FLOATS] = constml_firmware::f32_le(MODEL, 28);

/// Greedy decoding from the reference prompt on backend `B`: whether the tokens
/// equal PyTorch's, and the timer ticks of the prefill and of all decode steps.
fn greedy_run<B: Backend>(
    arena: &mut [f32; STATE],
    refs: &refvec::RefFile<'static>,
    echo: bool,
) -> Result<(bool, u32, u64, u64), Error> {
    let model = Llama::<f32, B>::new(CFG, llama2c_weights(&CFG, &WEIGHTS)?)?;
    let mut st = LlamaState::new(&CFG, CHUNK, arena)?;
    let missing = Error::Format {
        what: "story.bin",
        reason: "lacks its prompt or greedy tokens",
    };
    let prompt = refs.get("story/prompt_ids").ok_or(missing)?;
    let want = refs.get("story/greedy_ids").ok_or(missing)?;
    let mut ids = [0usize; CHUNK];
    for (i, id) in ids.iter_mut().enumerate() {
        *id = prompt.get_i64(i) as usize;
    }
    let t0 = timer::now();
    model.forward(&ids, &mut st, LogitRows::Last)?;
    let prefill = timer::ticks(t0, timer::now());
    let mut prev = 1;
    if echo {
        print!("[greedy] ");
        for &id in &ids {
            show(id, prev);
            prev = id;
        }
    }
    let (mut same, mut ticks, mut steps) = (true, 0u64, 0u64);
    for i in CHUNK..want.len() {
        let t = greedy(one_row(st.logits())?)?;
        same &= t == want.get_i64(i) as usize;
        if echo {
            show(t, prev);
        }
        prev = t;
        let t0 = timer::now();
        model.forward(&[t], &mut st, LogitRows::Last)?;
        ticks += timer::ticks(t0, timer::now()) as u64;
        steps += 1;
    }
    if echo {
        println!();
    }
    Ok((same, prefill, ticks, steps))
}

fn run(arena: &mut [f32; STATE]) -> Result<bool, Error> {
    if llama2c_config(&HEADER)? != CFG {
        println!("the checkpoint's header differs from CFG");
        return Ok(false);
    }
    let refs = refvec::RefFile::parse(REFERENCE).ok_or(Error::Format {
        what: "story.bin",
        reason: "not a reference file",
    })?;
    timer::start();

    // 1. Greedy from the reference prompt, on both backends: PyTorch's tokens.
    let (same, prefill, ticks, steps) = greedy_run::<Simd>(arena, &refs, true)?;
    let (same_scalar, _, ticks_scalar, _) = greedy_run::<Scalar>(arena, &refs, false)?;
    println!(
        "greedy tokens {} PyTorch's ({} tokens; Scalar backend: {})",
        if same { "equal" } else { "DIFFER FROM" },
        CHUNK + steps as usize,
        if same_scalar { "equal" } else { "DIFFERENT" },
    );

    // 2. A sampled story from BOS, seeded: the same text on every target.
    let model = Llama::<f32, Simd>::new(CFG, llama2c_weights(&CFG, &WEIGHTS)?)?;
    let mut st = LlamaState::new(&CFG, CHUNK, arena)?;
    let sampler = Sampler::new().with_temperature(0.8).with_top_p(0.9);
    let mut scratch = SamplerScratch::<f32, V>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(2026);
    let (mut token, mut prev) = (1usize, 1usize);
    let (mut sample_ticks, mut sampled) = (0u64, 0u64);
    print!("[sampling, seed 2026, temperature 0.8, top-p 0.9] ");
    for _ in 0..96 {
        let t0 = timer::now();
        model.forward(&[token], &mut st, LogitRows::Last)?;
        let next = sampler.sample(one_row(st.logits())?, &mut scratch, &mut rng)?;
        sample_ticks += timer::ticks(t0, timer::now()) as u64;
        sampled += 1;
        if next == 2 {
            break; // EOS
        }
        show(next, prev);
        prev = next;
        token = next;
    }
    println!();

    println!(
        "instructions (qemu -icount shift=0, 40 per timer tick): prefill of {} tokens {}",
        CHUNK,
        instructions(prefill as u64)
    );
    println!(
        "instructions per token: decode {} (Simd), {} (Scalar); decode + sample {} (Simd)",
        instructions(ticks) / steps.max(1),
        instructions(ticks_scalar) / steps.max(1),
        instructions(sample_ticks) / sampled.max(1)
    );
    Ok(same && same_scalar)
}

#[entry]
fn main() -> ! {
    constml_firmware::stack_paint();
    let Some(arena) = cortex_m::singleton!(: [f32; STATE] = [0.0; STATE]) else {
        println!("state already taken");
        constml_firmware::exit(false)
    };
    let ok = match run(arena) {
        Ok(ok) => ok,
        Err(e) => {
            println!("error: {e}");
            false
        }
    };
    println!(
        "memory: weights {} bytes in flash; state {} bytes in .bss; peak stack {} bytes",
        FLOATS * 4,
        STATE * 4,
        constml_firmware::stack_peak()
    );
    constml_firmware::exit(ok)
}
