//! ARMv7E-M DSP convolution (Cortex-M4/M7, Armv8-M with DSP): int8 with `SMLAD`, two 16-bit
//! multiply-accumulates per instruction. The float convolutions run the reference (these
//! cores have a scalar FPU only).
//!
//! `conv2d_s8` is an im2col of four output positions at a time (CMSIS-NN's scheme, with
//! four columns instead of two): the four input patches `[C, KH, KW]`, less the input zero
//! point (padding is 0), are written to scratch as q15, interleaved per group of four taps
//! in the order `SXTB16` unpacks weight bytes. Each output channel's weight row is then
//! read once per four positions: one word load and two `SXTB16` serve eight `SMLAD`s
//! (sixteen MACs), and two `LDM`s bring the four columns' halfwords. The im2col has three
//! paths: four neighbours of one output row at stride 1 (each tap's four values are one
//! word load), other blocks of four windows inside the input, and blocks that touch the
//! padding (or the last, short block).

use core::arch::asm;

use kestrel_format::ConvGeom;

use crate::kernels::{cortex_m::i16_words, DenseS8, Dims};

pub(crate) use super::reference::{conv2d_f16, conv2d_f32};

/// Output positions per im2col block (the scratch rule in `conv2d/mod.rs` uses it too).
use super::DSP_COLS as COLS;

/// Where tap `t` of column `col` lives in the im2col block: groups of four taps, each
/// `[COLS][x0 x2 x1 x3]` (so one `SXTB16` pair of a weight word meets one word pair per
/// column).
#[inline(always)]
const fn slot(col: usize, t: usize) -> usize {
    const ORDER: [usize; 4] = [0, 2, 1, 3];
    (t & !3) * COLS + col * 4 + ORDER[t & 3]
}

/// int8, as the reference bit for bit: `x` `[C, H, W]`, `weight` `[OC, C, KH, KW]`,
/// `y` `[OC, OH, OW]`.
pub(crate) fn conv2d_s8(
    x: &[i8],
    xd: Dims,
    p: DenseS8<'_>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    let taps = xd.c * g.kh * g.kw;
    debug_assert_eq!(p.weight.len(), yd.c * taps);
    let groups = taps / 4;
    let cols = i16_words(scratch, COLS * taps.next_multiple_of(4)); // [groups][COLS][4]
    let positions = yd.h * yd.w;
    for first in (0..positions).step_by(COLS) {
        let n = COLS.min(positions - first);
        // Top-left input element of each window, when all four lie inside the input.
        let corner = |pos: usize| {
            let (i, j) = (pos / yd.w * g.stride, pos % yd.w * g.stride);
            let inside =
                i >= g.pad && i - g.pad + g.kh <= xd.h && j >= g.pad && j - g.pad + g.kw <= xd.w;
            inside.then(|| (i - g.pad) * xd.w + j - g.pad)
        };
        match (n == COLS).then(|| [0, 1, 2, 3].map(|c| corner(first + c))) {
            // Four neighbours in one row (stride 1): each tap's four values are one word.
            Some([Some(a), Some(_), Some(_), Some(_)])
                if g.stride == 1 && first % yd.w + COLS <= yd.w =>
            {
                let span = ((xd.c - 1) * xd.h + g.kh - 1) * xd.w + g.kw + COLS - 1;
                im2col_run(&x[a..][..span], xd, g, p.zp_in, cols)
            }
            Some([Some(a), Some(b), Some(c), Some(d)]) => {
                im2col_inside(x, xd, g, p.zp_in, [a, b, c, d], cols)
            }
            _ => im2col_edge(x, xd, g, p.zp_in, yd.w, first, n, cols),
        }
        for o in 0..yd.c {
            let w_o = &p.weight[o * taps..][..taps]; // [C, KH, KW]
            let mut acc = if groups == 0 {
                [0; COLS]
            } else {
                // SAFETY: `w_o` has taps ≥ 4·groups bytes and `cols` 4·COLS·groups
                // 4-byte aligned i16s, exactly what `dot_1x4` reads.
                unsafe { dot_1x4(w_o.as_ptr(), cols.as_ptr(), groups) }
            };
            // The last taps mod 4, scalar.
            for (t, &w) in w_o.iter().enumerate().skip(groups * 4) {
                for (col, acc) in acc.iter_mut().enumerate() {
                    *acc = acc.wrapping_add(w as i32 * cols[slot(col, t)] as i32);
                }
            }
            let y_o = &mut y[o * positions + first..][..n];
            for (y, &acc) in y_o.iter_mut().zip(&acc) {
                *y = p.output_fast(o, acc);
            }
        }
    }
}

/// Writes the whole block when all four windows lie inside the input but are not four
/// neighbours of one row (a stride above 1, or a block across two rows): column `c` reads `x[corner[c] + offset(t)]`, with the offset of tap
/// `t = (ch, p, q)` advanced incrementally.
fn im2col_inside(
    x: &[i8],
    xd: Dims,
    g: ConvGeom,
    zp: i32,
    corner: [usize; COLS],
    cols: &mut [i16],
) {
    let taps = xd.c * g.kh * g.kw;
    // Span of one window in `x`: from its corner to its last element.
    let span = ((xd.c - 1) * xd.h + g.kh - 1) * xd.w + g.kw;
    let win = corner.map(|c| &x[c..][..span]);
    let zp = zp as i16;
    let (mut off, mut q, mut p) = (0usize, 0usize, 0usize);
    let mut next = || {
        let o = off;
        off += 1;
        q += 1;
        if q == g.kw {
            q = 0;
            off += xd.w - g.kw;
            p += 1;
            if p == g.kh {
                p = 0;
                off += (xd.h - g.kh) * xd.w;
            }
        }
        o
    };
    for (gi, block) in cols.chunks_exact_mut(4 * COLS).enumerate() {
        // Taps 4·gi + 0, 1, 2, 3 sit at halfwords 0, 2, 1, 3 of each column's quad.
        for (k, at) in [(0usize, 0usize), (1, 2), (2, 1), (3, 3)] {
            if 4 * gi + k >= taps {
                break;
            }
            let o = next();
            for c in 0..COLS {
                block[4 * c + at] = win[c][o] as i16 - zp;
            }
        }
    }
}

/// Writes the whole block for four neighbouring windows of one output row (stride 1, all
/// inside the input; `window` starts at the first one's top-left element): tap `t`'s four
/// values are the word `window[offset(t)..+4]`, so a group of four taps is four word
/// loads, split by `SXTB16`, less the zero point (`SSUB16`), paired per column by
/// `PKHBT`/`PKHTB`, eight word stores.
fn im2col_run(window: &[i8], xd: Dims, g: ConvGeom, zp: i32, cols: &mut [i16]) {
    let taps = xd.c * g.kh * g.kw;
    let zp16 = zp as i16;
    let zz = (zp as u16 as u32) * 0x0001_0001; // zp in both halfwords
    let (mut off, mut q, mut p) = (0usize, 0usize, 0usize);
    let mut next = || {
        let o = off;
        off += 1;
        q += 1;
        if q == g.kw {
            q = 0;
            off += xd.w - g.kw;
            p += 1;
            if p == g.kh {
                p = 0;
                off += (xd.h - g.kh) * xd.w;
            }
        }
        o
    };
    let groups = taps / 4;
    for quad in cols.chunks_exact_mut(4 * COLS).take(groups) {
        let o = [next(), next(), next(), next()];
        debug_assert!(o.iter().all(|&o| o + COLS <= window.len()) && quad.len() == 16);
        // SAFETY: each offset is a tap of the first window, so `o + 4 ≤ window.len()` (the
        // window slice spans all four windows); `quad` is 16 aligned i16s (32 bytes).
        unsafe { group_run(window.as_ptr(), o, zz, quad.as_mut_ptr()) };
    }
    for t in groups * 4..taps {
        let o = next();
        for c in 0..COLS {
            cols[slot(c, t)] = window[o + c] as i16 - zp16;
        }
    }
}

/// One tap group of [`im2col_run`]: taps 0 and 2 make word 0 of each column's quad, taps 1
/// and 3 word 1; columns are 8 bytes apart.
///
/// # Safety
/// `x + o[k]` readable for 4 bytes each, `quad` writable for 32 bytes, 4-byte aligned.
#[inline(always)]
unsafe fn group_run(x: *const i8, o: [usize; 4], zz: u32, quad: *mut i16) {
    // SAFETY: the caller guarantees the four word reads and the 32-byte write.
    unsafe {
        asm!(
            "ldr {a}, [{x}, {o0}]",
            "ldr {b}, [{x}, {o2}]",
            "sxtb16 {e}, {a}",
            "sxtb16 {f}, {b}",
            "ssub16 {e}, {e}, {zz}",
            "ssub16 {f}, {f}, {zz}",
            "pkhbt {t}, {e}, {f}, lsl #16",
            "pkhtb {f}, {f}, {e}, asr #16",
            "str {t}, [{d}]",
            "str {f}, [{d}, #16]",
            "sxtb16 {e}, {a}, ror #8",
            "sxtb16 {f}, {b}, ror #8",
            "ssub16 {e}, {e}, {zz}",
            "ssub16 {f}, {f}, {zz}",
            "pkhbt {t}, {e}, {f}, lsl #16",
            "pkhtb {f}, {f}, {e}, asr #16",
            "str {t}, [{d}, #8]",
            "str {f}, [{d}, #24]",
            "ldr {a}, [{x}, {o1}]",
            "ldr {b}, [{x}, {o3}]",
            "sxtb16 {e}, {a}",
            "sxtb16 {f}, {b}",
            "ssub16 {e}, {e}, {zz}",
            "ssub16 {f}, {f}, {zz}",
            "pkhbt {t}, {e}, {f}, lsl #16",
            "pkhtb {f}, {f}, {e}, asr #16",
            "str {t}, [{d}, #4]",
            "str {f}, [{d}, #20]",
            "sxtb16 {e}, {a}, ror #8",
            "sxtb16 {f}, {b}, ror #8",
            "ssub16 {e}, {e}, {zz}",
            "ssub16 {f}, {f}, {zz}",
            "pkhbt {t}, {e}, {f}, lsl #16",
            "pkhtb {f}, {f}, {e}, asr #16",
            "str {t}, [{d}, #12]",
            "str {f}, [{d}, #28]",
            x = in(reg) x,
            o0 = in(reg) o[0],
            o1 = in(reg) o[1],
            o2 = in(reg) o[2],
            o3 = in(reg) o[3],
            zz = in(reg) zz,
            d = in(reg) quad,
            a = out(reg) _,
            b = out(reg) _,
            e = out(reg) _,
            f = out(reg) _,
            t = out(reg) _,
            options(nostack),
        );
    }
}

/// Writes the whole block when some window reaches into the padding (or the block has
/// fewer than four positions, `n`): the same walk over the taps as [`im2col_inside`],
/// with each column's tap kept only where its input row and column exist (0 elsewhere, and
/// for columns past the last position).
#[allow(clippy::too_many_arguments)]
fn im2col_edge(
    x: &[i8],
    xd: Dims,
    g: ConvGeom,
    zp: i32,
    ow: usize,
    first: usize,
    n: usize,
    cols: &mut [i16],
) {
    let taps = xd.c * g.kh * g.kw;
    let zp = zp as i16;
    // Per column: the first input row and column of its window (may be negative), and the
    // window rows p and columns q that lie inside the input, as `lo` and count.
    let mut top = [0isize; COLS];
    let (mut p_lo, mut p_n, mut q_lo, mut q_n) = ([0; COLS], [0; COLS], [0; COLS], [0; COLS]);
    for c in 0..n {
        let pos = first + c;
        let r0 = (pos / ow * g.stride) as isize - g.pad as isize;
        let s0 = (pos % ow * g.stride) as isize - g.pad as isize;
        top[c] = r0 * xd.w as isize + s0;
        let range = |v0: isize, k: usize, len: usize| {
            let lo = (-v0).clamp(0, k as isize) as usize;
            let hi = (len as isize - v0).clamp(lo as isize, k as isize) as usize;
            (lo, hi - lo)
        };
        (p_lo[c], p_n[c]) = range(r0, g.kh, xd.h);
        (q_lo[c], q_n[c]) = range(s0, g.kw, xd.w);
    }
    let (mut off, mut p, mut q) = (0isize, 0usize, 0usize);
    for t in 0..taps {
        let at = slot(0, t);
        for c in 0..COLS {
            let inside = p.wrapping_sub(p_lo[c]) < p_n[c] && q.wrapping_sub(q_lo[c]) < q_n[c];
            cols[at + 4 * c] = if inside {
                x[(top[c] + off) as usize] as i16 - zp
            } else {
                0
            };
        }
        off += 1;
        q += 1;
        if q == g.kw {
            q = 0;
            off += (xd.w - g.kw) as isize;
            p += 1;
            if p == g.kh {
                p = 0;
                off += ((xd.h - g.kh) * xd.w) as isize;
            }
        }
    }
}

/// One weight word at `{pw}` against the four columns of one tap group: `LDM` brings
/// columns 0 and 1 (then 2 and 3) as `x0x2, x1x3` word pairs into r0–r3.
macro_rules! group_1x4 {
    () => {
        concat!(
            "ldr {w}, [{pw}], #4\n",
            "sxtb16 {t}, {w}, ror #8\n",
            "sxtb16 {w}, {w}\n",
            "ldm {pc}!, {{r0, r1, r2, r3}}\n",
            "smlad {a0}, {w}, r0, {a0}\n",
            "smlad {a0}, {t}, r1, {a0}\n",
            "smlad {a1}, {w}, r2, {a1}\n",
            "smlad {a1}, {t}, r3, {a1}\n",
            "ldm {pc}!, {{r0, r1, r2, r3}}\n",
            "smlad {a2}, {w}, r0, {a2}\n",
            "smlad {a2}, {t}, r1, {a2}\n",
            "smlad {a3}, {w}, r2, {a3}\n",
            "smlad {a3}, {t}, r3, {a3}\n",
        )
    };
}

/// `Σ_{t < 4·groups} w[t]·column_c[t]` for the four columns `c` of the im2col block.
///
/// # Safety
/// `w` is readable for `4·groups` bytes, `cols` for `16·groups` 4-byte aligned i16s, and
/// `groups ≥ 1`.
#[inline(always)]
unsafe fn dot_1x4(w: *const i8, cols: *const i16, groups: usize) -> [i32; COLS] {
    let mut acc = [0i32; COLS];
    // SAFETY: the caller guarantees the reads; the loops run `groups` groups in all and
    // touch no other memory.
    unsafe {
        asm!(
            // Single groups until a multiple of four is left, then four a turn.
            "1:",
            "tst {n}, #3",
            "beq 3f",
            group_1x4!(),
            "sub {n}, {n}, #1",
            "b 1b",
            "3:",
            "lsrs {n}, {n}, #2",
            "beq 4f",
            "2:",
            group_1x4!(),
            group_1x4!(),
            group_1x4!(),
            group_1x4!(),
            "subs {n}, {n}, #1",
            "bne 2b",
            "4:",
            pw = inout(reg) w => _,
            pc = inout(reg) cols => _,
            n = inout(reg) groups => _,
            a0 = inout(reg) acc[0],
            a1 = inout(reg) acc[1],
            a2 = inout(reg) acc[2],
            a3 = inout(reg) acc[3],
            w = out(reg) _,
            t = out(reg) _,
            out("r0") _,
            out("r1") _,
            out("r2") _,
            out("r3") _,
            options(pure, readonly, nostack),
        );
    }
    acc
}
