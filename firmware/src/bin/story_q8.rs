//! The story model in Q8_0 on the Cortex-M4F: `build.rs` quantizes
//! `examples/story/model.bin` with constml's llama2.c version-2 exporter
//! (group size 32; 557 KB instead of 1.99 MB) and runs it greedily on the
//! host; this binary keeps the quantized file in flash as it is (`&'static
//! [u8]`: the int8 values and scales are read in place, only the 864 RMSNorm
//! weights are decoded into RAM), decodes greedily from the same prompt and
//! checks that it picks the host's tokens (the host sums each row in 16 lanes,
//! the M4F in one: equal to rounding, so a near-tie could flip a token; none
//! does), then samples a story and reports
//! instructions per token (`firmware/run-tests story_q8`, `-icount shift=0`).
#![no_std]
#![no_main]

use constml::decode::{Sampler, SamplerScratch, greedy};
use constml::models::quant::Q8Scratch;
use constml::models::{
    LlamaQ8, LlamaState, LogitRows, llama_q8_scratch_len, llama2c_q8_norms_len, llama2c_q8_weights,
};
use constml::{Error, Scalar};
use constml_firmware::story::{CFG, CHUNK, V, instructions, one_row, show};
use constml_firmware::{print, println, timer};
use cortex_m_rt::entry;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

/// The version-2 checkpoint, in flash as written (an array, so that its size
/// shows under its own symbol for `firmware/footprint`).
static MODEL: [u8; MODEL_LEN] = *include_bytes!(concat!(env!("OUT_DIR"), "/story_q80.bin"));
const MODEL_LEN: usize = include_bytes!(concat!(env!("OUT_DIR"), "/story_q80.bin")).len();
/// The host's greedy tokens for the reference prompt (u16 little-endian).
static HOST_GREEDY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/story_q8_greedy.bin"));

const GS: usize = 32;
const STATE: usize = CFG.state_len(CHUNK);
const NORMS: usize = llama2c_q8_norms_len(&CFG);
const SQ: usize = llama_q8_scratch_len(&CFG, GS).0;
const SS: usize = llama_q8_scratch_len(&CFG, GS).1;

/// Everything mutable, in one `.bss` block.
struct Ram {
    arena: [f32; STATE],
    norms: [f32; NORMS],
    q: [i8; SQ],
    s: [f32; SS],
}

fn host_token(i: usize) -> usize {
    u16::from_le_bytes([HOST_GREEDY[2 * i], HOST_GREEDY[2 * i + 1]]) as usize
}

fn run(ram: &mut Ram) -> Result<bool, Error> {
    let (cfg, w) = llama2c_q8_weights(&MODEL, &mut ram.norms)?;
    if cfg != CFG || w.group_size != GS {
        println!("the checkpoint's header differs from CFG");
        return Ok(false);
    }
    // Scalar: on a microcontroller `Simd` runs the same kernels.
    let model = LlamaQ8::<Scalar>::new(cfg, w)?;
    let mut st = LlamaState::new(&CFG, CHUNK, &mut ram.arena)?;
    let mut scratch = Q8Scratch {
        q: &mut ram.q,
        s: &mut ram.s,
    };
    timer::start();

    // 1. Greedy from the reference prompt: the host's Q8_0 tokens.
    let n = HOST_GREEDY.len() / 2;
    let ids: [usize; CHUNK] = core::array::from_fn(host_token);
    let t0 = timer::now();
    model.forward(&ids, &mut st, &mut scratch, LogitRows::Last)?;
    let prefill = timer::ticks(t0, timer::now());
    print!("[greedy, Q8_0] ");
    let mut prev = 1;
    for &id in &ids {
        show(id, prev);
        prev = id;
    }
    let (mut same, mut ticks) = (true, 0u64);
    for i in CHUNK..n {
        let t = greedy(one_row(st.logits())?)?;
        same &= t == host_token(i);
        show(t, prev);
        prev = t;
        let t0 = timer::now();
        model.forward(&[t], &mut st, &mut scratch, LogitRows::Last)?;
        ticks += timer::ticks(t0, timer::now()) as u64;
    }
    println!();
    println!(
        "greedy tokens {} the host's ({} tokens)",
        if same { "equal" } else { "DIFFER FROM" },
        n
    );

    // 2. A sampled story from BOS, seeded.
    st.reset();
    let sampler = Sampler::new().with_temperature(0.8).with_top_p(0.9);
    let mut ss = SamplerScratch::<f32, V>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(2026);
    let (mut token, mut prev) = (1usize, 1usize);
    print!("[sampling, Q8_0, seed 2026, temperature 0.8, top-p 0.9] ");
    for _ in 0..96 {
        model.forward(&[token], &mut st, &mut scratch, LogitRows::Last)?;
        let next = sampler.sample(one_row(st.logits())?, &mut ss, &mut rng)?;
        if next == 2 {
            break;
        }
        show(next, prev);
        prev = next;
        token = next;
    }
    println!();
    println!(
        "instructions (qemu -icount shift=0, 40 per timer tick): prefill of {} tokens {}; decode {} per token",
        CHUNK,
        instructions(prefill as u64),
        instructions(ticks) / (n - CHUNK).max(1) as u64
    );
    Ok(same)
}

#[entry]
fn main() -> ! {
    constml_firmware::stack_paint();
    let ram = cortex_m::singleton!(: Ram = Ram {
        arena: [0.0; STATE],
        norms: [0.0; NORMS],
        q: [0; SQ],
        s: [0.0; SS],
    });
    let Some(ram) = ram else {
        constml_firmware::exit(false)
    };
    let ok = match run(ram) {
        Ok(ok) => ok,
        Err(e) => {
            println!("error: {e}");
            false
        }
    };
    println!(
        "memory: weights {} bytes in flash (Q8_0); state {} bytes in .bss; peak stack {} bytes",
        MODEL.len(),
        core::mem::size_of::<Ram>(),
        constml_firmware::stack_peak()
    );
    constml_firmware::exit(ok)
}
