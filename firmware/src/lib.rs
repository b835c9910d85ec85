//! Board support shared by the firmware binaries: output and exit status through
//! semihosting, a panic handler and fault handlers that report and exit with a
//! failure (never hang), a small test harness, a stack high-water mark by
//! painting, and the mps2 board timer the demo reads.
//!
//! Targets (one QEMU machine each, see `run-tests`): `thumbv7em-none-eabihf` on
//! `mps2-an386` (Cortex-M4F), `thumbv6m-none-eabi` on `microbit` (Cortex-M0),
//! `riscv32imac-unknown-none-elf` on `virt`.
#![no_std]

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

#[cfg(target_arch = "arm")]
use cortex_m_semihosting as semi;
#[cfg(target_arch = "riscv32")]
use riscv_semihosting as semi;

// ------------------------------------------------------------------ output

/// Host output through semihosting (QEMU prints it on its stdout).
pub struct Host;

impl Write for Host {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        semi::hio::hstdout()
            .map_err(|_| fmt::Error)?
            .write_all(s.as_bytes())
            .map_err(|_| fmt::Error)
    }
}

/// `println!` to the host.
#[macro_export]
macro_rules! println {
    ($($t:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::Host, $($t)*);
    }};
}

/// `print!` to the host.
#[macro_export]
macro_rules! print {
    ($($t:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::Host, $($t)*);
    }};
}

/// Ends the QEMU run: exit status 0 if `ok`, 1 otherwise.
pub fn exit(ok: bool) -> ! {
    semi::debug::exit(if ok {
        semi::debug::EXIT_SUCCESS
    } else {
        semi::debug::EXIT_FAILURE
    });
    // Only reached without a semihosting host; the runner's timeout ends it.
    #[allow(clippy::empty_loop)]
    loop {}
}

// ------------------------------------------------------------------ harness

static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);

// Single core, no interrupts touch these: a load and a store (thumbv6m has no
// atomic read-modify-write) are enough.
fn bump(c: &AtomicU32) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The last line of every run: `N passed, M failed`.
fn summary(extra_failed: u32) {
    println!(
        "{} passed, {} failed",
        PASSED.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed) + extra_failed
    );
}

/// Why a test failed.
#[derive(Debug)]
pub enum Fail {
    /// A library call returned an error.
    Lib(constml::Error),
    /// A value differs from the reference.
    Value {
        /// What was compared.
        what: &'static str,
        /// The element.
        index: usize,
        /// Computed here.
        got: f64,
        /// The reference.
        want: f64,
    },
    /// A reference entry is missing from the embedded file.
    Missing(&'static str),
    /// Any other check.
    Check(&'static str),
}

impl From<constml::Error> for Fail {
    fn from(e: constml::Error) -> Self {
        Fail::Lib(e)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Lib(e) => write!(f, "library error: {e}"),
            Fail::Value {
                what,
                index,
                got,
                want,
            } => write!(f, "{what}[{index}]: got {got:e}, want {want:e}"),
            Fail::Missing(name) => write!(f, "reference entry {name} missing"),
            Fail::Check(what) => write!(f, "check failed: {what}"),
        }
    }
}

/// A test's result.
pub type Outcome = Result<(), Fail>;

/// Runs one test and prints `ok` or the failure.
pub fn run(name: &str, test: fn() -> Outcome) {
    print!("test {name} ... ");
    match test() {
        Ok(()) => {
            bump(&PASSED);
            println!("ok");
        }
        Err(e) => {
            bump(&FAILED);
            println!("FAILED: {e}");
        }
    }
}

/// Ends a footprint probe: prints the sampled token (or the error) and the
/// peak stack; exit status 0 iff a token below `v` came out.
#[inline(always)]
pub fn finish_probe(token: constml::Result<usize>, v: usize) -> ! {
    let ok = match token {
        Ok(t) => {
            println!("token {t}");
            t < v
        }
        Err(e) => {
            println!("error: {e}");
            false
        }
    };
    println!("peak stack {} bytes", stack_peak());
    exit(ok)
}

/// Prints the summary line and exits: status 0 iff nothing failed.
pub fn finish() -> ! {
    summary(0);
    exit(FAILED.load(Ordering::Relaxed) == 0)
}

/// Fails unless `|got − want| ≤ atol + rtol·|want|` element by element (the
/// `torch.allclose` rule); the slices must have one length.
pub fn close(what: &'static str, got: &[f32], want: &[f32], atol: f32, rtol: f32) -> Outcome {
    if got.len() != want.len() {
        return Err(Fail::Check(what));
    }
    for (index, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= atol + rtol * w.abs() || (g.is_nan() && w.is_nan()) || g == w;
        if !ok {
            return Err(Fail::Value {
                what,
                index,
                got: g as f64,
                want: w as f64,
            });
        }
    }
    Ok(())
}

/// Fails unless `got` and `want` are equal bit for bit.
pub fn same_bits(what: &'static str, got: &[f32], want: &[f32]) -> Outcome {
    if got.len() != want.len() {
        return Err(Fail::Check(what));
    }
    for (index, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g.to_bits() != w.to_bits() {
            return Err(Fail::Value {
                what,
                index,
                got: g as f64,
                want: w as f64,
            });
        }
    }
    Ok(())
}

/// Fails with `what` unless `cond`.
pub fn ensure(cond: bool, what: &'static str) -> Outcome {
    if cond { Ok(()) } else { Err(Fail::Check(what)) }
}

// ------------------------------------------------------------------ failures

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!();
    println!("panic: {info}");
    summary(1);
    exit(false)
}

#[cfg(target_arch = "arm")]
mod arm_faults {
    use cortex_m_rt::{ExceptionFrame, exception};

    // cortex-m-rt declares this handler `unsafe`: it runs on a corrupt state.
    #[exception]
    unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
        crate::println!();
        crate::println!("HardFault at pc {:#010x}", frame.pc());
        crate::summary(1);
        crate::exit(false)
    }

    #[exception]
    unsafe fn DefaultHandler(irqn: i16) {
        crate::println!();
        crate::println!("unexpected exception or interrupt {irqn}");
        crate::summary(1);
        crate::exit(false)
    }
}

#[cfg(target_arch = "riscv32")]
mod riscv_faults {
    // riscv-rt calls the symbol `ExceptionHandler` for every synchronous trap.
    #[unsafe(export_name = "ExceptionHandler")]
    fn exception_handler(_frame: &riscv_rt::TrapFrame) -> ! {
        let cause = riscv::register::mcause::read().bits();
        let pc = riscv::register::mepc::read();
        crate::println!();
        crate::println!("exception: mcause {cause:#x} at pc {pc:#010x}");
        crate::summary(1);
        crate::exit(false)
    }
}

/// Deliberately faults (the `fail-fault` check of the runner): an undefined
/// instruction on Arm (a HardFault), a load from an address no memory answers
/// on RISC-V (a load access fault).
pub fn fault() {
    #[cfg(target_arch = "arm")]
    cortex_m::asm::udf();
    #[cfg(target_arch = "riscv32")]
    {
        let bad = 0xF000_0000usize as *const u32;
        // SAFETY: none; this read is meant to fault so that the handler runs.
        let v = unsafe { core::ptr::read_volatile(bad) };
        core::hint::black_box(v);
    }
}

// ------------------------------------------------------------------ stack

#[cfg(target_arch = "arm")]
unsafe extern "C" {
    // cortex-m-rt's link.x: the stack grows down from `_stack_start` towards
    // `_stack_end` (the end of .bss and .uninit).
    static _stack_start: u32;
    static _stack_end: u32;
}
#[cfg(target_arch = "riscv32")]
unsafe extern "C" {
    // riscv-rt's link.x: the stack grows down from `__sstack` to `__estack`.
    #[link_name = "__sstack"]
    static _stack_start: u32;
    #[link_name = "__estack"]
    static _stack_end: u32;
}

const PAINT: u32 = 0x5EED_C0DE;

fn stack_bounds() -> (usize, usize) {
    (
        core::ptr::addr_of!(_stack_end) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    )
}

/// Paints the unused stack (from its limit up to a little below the caller's
/// frame) with a pattern, for [`stack_peak`].
#[inline(never)]
pub fn stack_paint() {
    let (bottom, _) = stack_bounds();
    let here = core::ptr::addr_of!(bottom) as usize;
    // Leave this function's own frame (and a margin) alone.
    let end = (here - 256) & !3;
    let mut p = bottom;
    while p < end {
        // SAFETY: `bottom..end` is stack memory below the live frames: nothing
        // lives there while this runs, and the words are aligned.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Bytes of stack used since [`stack_paint`]: the distance from the stack's top
/// to the lowest word that no longer holds the pattern.
pub fn stack_peak() -> usize {
    let (bottom, top) = stack_bounds();
    let mut p = bottom;
    // SAFETY: reads aligned words of the stack region, below the live frames
    // or within them; a plain read of initialised memory.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}

/// The stack's size in bytes (the linker's region).
pub fn stack_size() -> usize {
    let (bottom, top) = stack_bounds();
    top - bottom
}

// ------------------------------------------------------------------ timer

/// The mps2 board's CMSDK APB timer 0 (at 0x4000_0000), clocked at the 25 MHz
/// system clock: a 32-bit down-counter. Under `qemu -icount shift=0` every
/// instruction advances virtual time by 1 ns, so one tick is 40 instructions.
#[cfg(all(target_arch = "arm", not(small_target)))]
pub mod timer {
    const BASE: usize = 0x4000_0000;
    const CTRL: usize = BASE;
    const VALUE: usize = BASE + 4;
    const RELOAD: usize = BASE + 8;

    /// Instructions per timer tick under `-icount shift=0` (25 MHz, 1 ns each).
    pub const INSTRUCTIONS_PER_TICK: u64 = 40;

    /// Starts the counter from `u32::MAX`.
    pub fn start() {
        // SAFETY: the documented registers of the mps2 board's timer 0; plain
        // aligned MMIO writes.
        unsafe {
            core::ptr::write_volatile(RELOAD as *mut u32, u32::MAX);
            core::ptr::write_volatile(VALUE as *mut u32, u32::MAX);
            core::ptr::write_volatile(CTRL as *mut u32, 1);
        }
    }

    /// The current count (it counts down).
    pub fn now() -> u32 {
        // SAFETY: an aligned MMIO read of the timer's value register.
        unsafe { core::ptr::read_volatile(VALUE as *const u32) }
    }

    /// Ticks from `earlier` to `later` (one wrap at most).
    pub fn ticks(earlier: u32, later: u32) -> u32 {
        earlier.wrapping_sub(later)
    }
}

// ------------------------------------------------------------------ weights

/// Little-endian `f32`s from `bytes[skip..]`, decoded at compile time: a
/// `static W: [f32; N] = f32_le(include_bytes!(..), skip)` puts the weights in
/// flash (`.rodata`) as properly aligned floats, with no `unsafe` cast and no RAM
/// copy. Panics (a compile error, in a `static`) if `bytes` is too short.
pub const fn f32_le<const N: usize>(bytes: &[u8], skip: usize) -> [f32; N] {
    let mut out = [0.0f32; N];
    let mut i = 0;
    while i < N {
        let at = skip + 4 * i;
        out[i] = f32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        i += 1;
    }
    out
}

// ------------------------------------------------------------------ story demos

/// Text and counting helpers of the story demos (`story`, `story_q8`).
#[cfg(all(target_arch = "arm", not(small_target)))]
pub mod story {
    use crate::timer;

    /// The story model's shape (its llama2.c header; each demo checks the
    /// file against it at start).
    pub const CFG: constml::models::LlamaConfig = constml::models::LlamaConfig {
        dim: 96,
        hidden_dim: 256,
        n_layers: 4,
        n_heads: 4,
        n_kv_heads: 4,
        vocab_size: 512,
        seq_len: 256,
        shared_classifier: true,
    };
    /// The story model's vocabulary size.
    pub const V: usize = CFG.vocab_size;
    /// The longest chunk a demo feeds at once: the reference prompt.
    pub const CHUNK: usize = 12;

    static TOKENIZER: &[u8] = include_bytes!("../../examples/story/tokenizer.bin");

    /// Token `id`'s text from llama2.c's tokenizer file (scanned; 512 pieces).
    fn piece(id: usize) -> &'static [u8] {
        let b = TOKENIZER;
        let mut at = 4; // max_token_length
        for i in 0..=id {
            if at + 8 > b.len() {
                return b"";
            }
            let len =
                i32::from_le_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]).max(0) as usize;
            at += 8;
            if i == id {
                return b.get(at..at + len).unwrap_or(b"");
            }
            at += len;
        }
        b""
    }

    /// Prints token `id` as llama2.c does: `<0xHH>` pieces are raw bytes, and the
    /// leading space of the piece after BOS is dropped.
    pub fn show(id: usize, prev: usize) {
        if id == 1 {
            return; // BOS
        }
        let mut p = piece(id);
        if prev == 1 && p.first() == Some(&b' ') {
            p = &p[1..];
        }
        if let [b'<', b'0', b'x', h, l, b'>'] = *p {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            let byte = hex(h) * 16 + hex(l);
            if byte.is_ascii_graphic() || byte.is_ascii_whitespace() {
                print!("{}", byte as char);
            }
            return;
        }
        print!("{}", core::str::from_utf8(p).unwrap_or("?"));
    }

    /// The logits as one row of `V`.
    pub fn one_row(logits: &[f32]) -> Result<&[f32; V], constml::Error> {
        logits.try_into().map_err(|_| constml::Error::Format {
            what: "logits",
            reason: "not one row of V",
        })
    }

    /// Instructions from timer ticks (`-icount shift=0`: 40 per tick).
    pub fn instructions(ticks: u64) -> u64 {
        ticks * timer::INSTRUCTIONS_PER_TICK
    }
}
