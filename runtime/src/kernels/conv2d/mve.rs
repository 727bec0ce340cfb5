//! Armv8.1-M Helium (MVE) convolution (Cortex-M55/M85): int8 with `VMLADAVA.S8`, sixteen
//! multiply-accumulates per instruction, in tail-predicated low-overhead loops
//! (`DLSTP`/`LETP`). f32 with MVE-F across eight output channels; f16 runs the reference.
//!
//! `conv2d_s8` is an im2col of four output positions at a time: the four input patches
//! `[C, KH, KW]` are copied to scratch as raw int8 codes, padding as the code `zp_in`
//! (real zero). Each output channel's weight row is then read once per four positions, and
//! `Σ w·(x − zp_in)` is computed as `Σ w·x − zp_in·Σ w`, the weight sum coming from a
//! `VADDVA.S8` in the same loop.

use core::arch::asm;

use kestrel_format::ConvGeom;

use crate::kernels::{cortex_m::Requant, tap, DenseF, DenseS8, Dims};

pub(crate) use super::reference::conv2d_f16;

/// f32, as the reference bit for bit for finite weights: `x` `[C, H, W]`, `weight`
/// `[OC, C, KH, KW]`, `y` `[OC, OH, OW]`.
///
/// Per output row `i`, the `KH` input rows each channel's taps read are copied to scratch
/// (4-byte aligned), zero-padded to `WP = (OW − 1)·stride + KW` columns: `rows` `[C, KH, WP]`.
/// Then for each output position, eight output channels at a time run `dot8_rows_f32`,
/// which walks the window `[C, KH, KW]` of `rows` in the reference's `(c, p, q)` order,
/// each lane with a rounded `VMUL.F32` and `VADD.F32` per tap, each four channels' weights
/// coming from one gather load. The reference skips padding taps; here they add
/// `w·0.0 = ±0.0`, which changes no sum: it starts at +0.0 and a round-to-nearest sum is
/// −0.0 only if both terms are, so it is never −0.0 and `s + ±0.0 = s`.
pub(crate) fn conv2d_f32(
    x: &[f32],
    xd: Dims,
    p: DenseF<'_, f32>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
    scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    let taps = xd.c * g.kh * g.kw;
    debug_assert_eq!(p.weight.len(), yd.c * taps);
    let wp = super::mve_f32_row_width(yd.w, g);
    let skip = scratch.as_ptr().align_offset(4);
    let n_rows = xd.c * g.kh;
    let rows: &mut [f32] = bytemuck::cast_slice_mut(&mut scratch[skip..][..n_rows * wp * 4]);
    // Buffer column u is input column u − pad.
    let u_lo = g.pad.min(wp);
    let u_hi = (xd.w + g.pad).clamp(u_lo, wp);
    for i in 0..yd.h {
        for (cp, dst) in rows.chunks_exact_mut(wp.max(1)).enumerate() {
            let (c, kp) = (cp / g.kh, cp % g.kh);
            match tap(i, kp, g.stride, g.pad, xd.h) {
                Some(r) if u_lo < u_hi => {
                    let src = (c * xd.h + r) * xd.w + u_lo - g.pad;
                    dst[..u_lo].fill(0.0);
                    dst[u_lo..u_hi].copy_from_slice(&x[src..][..u_hi - u_lo]);
                    dst[u_hi..].fill(0.0);
                }
                _ => dst.fill(0.0),
            }
        }
        for j in 0..yd.w {
            let window = rows[j * g.stride..].as_ptr();
            let mut o = 0;
            while o < yd.c {
                let n = (yd.c - o).min(LANES);
                // Lanes past the last channel read the last one again; their sums are dropped.
                let w8: [*const f32; LANES] =
                    core::array::from_fn(|l| p.weight[(o + l.min(n - 1)) * taps..].as_ptr());
                // SAFETY: each weight row is `taps` floats; the window's `n_rows` rows of
                // `KW` floats, `WP` apart, end at `rows[(n_rows − 1)·WP + j·stride + KW]`,
                // inside `rows` as `j·stride + KW ≤ WP`.
                let sums = unsafe { dot8_rows_f32(w8, window, n_rows, g.kw, wp) };
                for (l, sum) in sums.iter().enumerate().take(n) {
                    y[((o + l) * yd.h + i) * yd.w + j] = p.bias[o + l] + sum;
                }
                o += LANES;
            }
        }
    }
}

/// Output channels per `dot8_rows_f32` call: two vectors of four.
const LANES: usize = 8;

/// `[Σ_{r,q} w_l[r·kw + q]·x[r·wp + q]; 8]` for the eight weight rows `w[l]`, `r < n_rows`,
/// `q < kw`, each lane summed from 0.0 in `(r, q)` order with a rounded multiply and a
/// rounded add per term. Each `x` load serves two gathers of four rows.
///
/// # Safety
/// Each `w[l]` is readable for `n_rows·kw` floats, and `x` for `n_rows` runs of `kw`
/// floats `wp` apart; all 4-byte aligned.
#[inline(always)]
unsafe fn dot8_rows_f32(
    w: [*const f32; LANES],
    x: *const f32,
    n_rows: usize,
    kw: usize,
    wp: usize,
) -> [f32; LANES] {
    // The gather's pre-indexed writeback adds 4 before each load: start one float early.
    let addr = w.map(|r| (r as u32).wrapping_sub(4));
    let mut sums = [0f32; LANES];
    // SAFETY: n_rows turns of kw taps: each reads one float of x and one float of each
    // weight row, in order; x then skips to its next run. q0–q4 are declared clobbered;
    // no predication, so VPR is untouched.
    unsafe {
        asm!(
            "vldrw.u32 q0, [{addr}]",
            "vldrw.u32 q1, [{addr}, #16]",
            "vmov.i32 q2, #0",
            "vmov.i32 q3, #0",
            "cmp {nr}, #0",
            "beq 5f",
            "2:",
            "wls lr, {kw}, 4f",
            "3:",
            "ldr r0, [{px}], #4",
            "vldrw.u32 q4, [q0, #4]!",
            "vmul.f32 q4, q4, r0",
            "vadd.f32 q2, q2, q4",
            "vldrw.u32 q4, [q1, #4]!",
            "vmul.f32 q4, q4, r0",
            "vadd.f32 q3, q3, q4",
            "le lr, 3b",
            "4:",
            "add {px}, {px}, {skip}",
            "subs {nr}, {nr}, #1",
            "bne 2b",
            "5:",
            "vstrw.32 q2, [{sums}]",
            "vstrw.32 q3, [{sums}, #16]",
            addr = in(reg) addr.as_ptr(),
            sums = in(reg) sums.as_mut_ptr(),
            kw = in(reg) kw,
            skip = in(reg) (wp - kw) * 4,
            nr = inout(reg) n_rows => _,
            px = inout(reg) x => _,
            out("r0") _,
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _,
            out("d8") _, out("d9") _,
            options(nostack),
        );
    }
    sums
}

/// Output positions per im2col block (the scratch rule in `conv2d/mod.rs` uses it too).
use super::MVE_COLS as COLS;

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
    let (cols, rest) = scratch.split_at_mut(COLS * taps);
    let cols: &mut [i8] = bytemuck::cast_slice_mut(cols); // [COLS][taps]
    let skip = rest.as_ptr().align_offset(4);
    let words: &mut [i32] = bytemuck::cast_slice_mut(&mut rest[skip..][..(1 + COLS) * 4 * yd.c]);
    let (sw, sums) = words.split_at_mut(yd.c); // [OC] Σ_t w[o,t], [OC][COLS]
    for (sw, w_o) in sw.iter_mut().zip(p.weight.chunks_exact(taps)) {
        *sw = p.zp_in.wrapping_mul(weight_sum(w_o));
    }
    let positions = yd.h * yd.w;
    let all_fast = p.shift.iter().all(|&s| s <= -2);
    for first in (0..positions).step_by(COLS) {
        let n = COLS.min(positions - first);
        // Four positions in one output row, stride 1, all windows inside: one pass.
        let (i, j) = (first / yd.w, first % yd.w);
        let run = n == COLS && j + COLS <= yd.w && g.stride == 1 && g.kw <= 16;
        if run
            && i >= g.pad
            && i - g.pad + g.kh <= xd.h
            && j >= g.pad
            && j - g.pad + COLS - 1 + g.kw <= xd.w
        {
            let span = ((xd.c - 1) * xd.h + g.kh - 1) * xd.w + g.kw + COLS - 1;
            let window = &x[(i - g.pad) * xd.w + j - g.pad..][..span];
            // SAFETY: the four windows' C·KH rows of KW ≤ 16 bytes (shifted by 0..4) lie in
            // `window`, and `cols` has four columns of C·KH·KW bytes.
            unsafe { im2col_run(window.as_ptr(), xd, g, cols) };
        } else {
            for (c, col) in cols.chunks_exact_mut(taps).enumerate() {
                // Missing positions past the last repeat it (computed, not stored).
                let pos = first + c.min(n - 1);
                if g.kw <= 16 {
                    im2col_rows(x, xd, g, p.zp_in, yd.w, pos, col);
                } else {
                    im2col(x, xd, g, p.zp_in, yd.w, pos, col);
                }
            }
        }
        // SAFETY: `weight` has OC rows of `taps` bytes, `cols` four columns of `taps`
        // bytes, and `sums` OC·4 i32s.
        unsafe {
            dot_block(
                p.weight.as_ptr(),
                cols.as_ptr(),
                taps,
                yd.c,
                sums.as_mut_ptr(),
            )
        };
        if all_fast {
            let y = &mut y[first..][..(yd.c - 1) * positions + n];
            // SAFETY: `sums` has 4·OC i32s, `sw` and the parameters OC each, and `y` holds
            // every `o·positions + c` for `c < n ≤ 4`; every shift is ≤ −2.
            unsafe { outputs_fast(&p, sw, sums, y, positions, n) };
        } else {
            outputs(&p, sw, sums, &mut y[first..], positions, n);
        }
    }
}

/// `y[o·positions + c] = output(o, sums[o][c] − zp_in·Σ w[o])` for the block's `n ≤ 4`
/// positions `c` of every channel `o`. Channels with `shift ≤ −2` (every realistic one)
/// take all four accumulators through one vector sequence, bit-exact with
/// [`DenseS8::output`]: `VMULH` (the product's high word), `VRSHL` by `shift + 1` (the
/// rounding right shift by `n − 32`, see `DenseS8::output_fast`), the zero point, two
/// saturating narrowings to int8, and a store predicated to `n` lanes.
#[inline(never)]
fn outputs(p: &DenseS8<'_>, sw: &[i32], sums: &[i32], y: &mut [i8], positions: usize, n: usize) {
    debug_assert!(n <= COLS && y.len() >= (sw.len() - 1) * positions + n);
    for (o, (acc, &zsw)) in sums.chunks_exact(COLS).zip(sw).enumerate() {
        let y_o = &mut y[o * positions..][..n];
        let shift = p.shift[o];
        if shift > -2 {
            let rq = Requant::new(p, o, zsw);
            for (y, &acc) in y_o.iter_mut().zip(acc) {
                *y = rq.apply(acc);
            }
            continue;
        }
        // SAFETY: reads the four i32s of `acc`, stores `n` bytes to `y_o` (which has `n`);
        // q0–q2 are declared clobbered and VPR is saved and restored.
        unsafe {
            asm!(
                "vmrs {vpr}, p0",
                "vldrw.u32 q0, [{acc}]",
                "vadd.i32 q0, q0, {bias}",
                "vdup.32 q1, {m}",
                "vmulh.s32 q0, q0, q1",
                "vrshl.s32 q0, {ns}",
                "vadd.i32 q0, q0, {zp}",
                "vqmovnb.s32 q1, q0",
                "vqmovnb.s16 q2, q1",
                "vctp.32 {n}",
                "vpst",
                "vstrbt.32 q2, [r1]", // narrowing stores take r0–r7 only
                "vmsr p0, {vpr}",
                vpr = out(reg) _,
                acc = in(reg) acc.as_ptr(),
                bias = in(reg) p.bias[o].wrapping_sub(zsw),
                m = in(reg) p.multiplier[o],
                ns = in(reg) shift + 1,
                zp = in(reg) p.zp_out,
                n = in(reg) y_o.len(),
                in("r1") y_o.as_mut_ptr(),
                out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
                options(nostack),
            );
        }
    }
}

/// [`outputs`] when every channel's shift is ≤ −2, as one asm loop over the channels (the
/// same vector sequence; the Rust loop around it cost three times the sequence itself).
///
/// # Safety
/// `sums` holds `4·OC` i32s and `sw` OC (OC = `p.bias.len()`, as `multiplier` and
/// `shift`, all ≤ −2); `y` holds `(OC − 1)·positions + n` bytes; `1 ≤ n ≤ 4`.
#[inline(never)]
unsafe fn outputs_fast(
    p: &DenseS8<'_>,
    sw: &[i32],
    sums: &[i32],
    y: &mut [i8],
    positions: usize,
    n: usize,
) {
    let oc = p.bias.len();
    debug_assert!(sw.len() == oc && sums.len() >= 4 * oc && p.shift.len() == oc);
    debug_assert!(y.len() >= (oc - 1) * positions + n && (1..=4).contains(&n));
    // SAFETY: per channel, reads one i32 of bias, sw, multiplier and shift and four of
    // `sums`, and stores `n` bytes at `y + o·positions` (inside `y`, as the caller
    // guarantees). VPR is saved on the stack and restored; q0–q2 are declared clobbered.
    unsafe {
        asm!(
            "vmrs {t}, p0",
            "str {t}, [sp, #-8]!",
            "vctp.32 {n}",
            "1:",
            "ldr {t}, [{psw}], #4",
            "ldr {b}, [{pb}], #4",
            "sub {b}, {b}, {t}",
            "ldr {m}, [{pm}], #4",
            "ldr {t}, [{ps}], #4",
            "add {t}, {t}, #1",
            "vldrw.u32 q0, [{acc}], #16",
            "vadd.i32 q0, q0, {b}",
            "vdup.32 q1, {m}",
            "vmulh.s32 q0, q0, q1",
            "vrshl.s32 q0, {t}",
            "vadd.i32 q0, q0, {zp}",
            "vqmovnb.s32 q1, q0",
            "vqmovnb.s16 q2, q1",
            "vpst",
            "vstrbt.32 q2, [r1]", // narrowing stores take r0–r7 only
            "add r1, r1, {positions}",
            "subs {cnt}, {cnt}, #1",
            "bne 1b",
            "ldr {t}, [sp], #8",
            "vmsr p0, {t}",
            t = out(reg) _,
            b = out(reg) _,
            m = out(reg) _,
            n = in(reg) n,
            psw = inout(reg) sw.as_ptr() => _,
            pb = inout(reg) p.bias.as_ptr() => _,
            pm = inout(reg) p.multiplier.as_ptr() => _,
            ps = inout(reg) p.shift.as_ptr() => _,
            acc = inout(reg) sums.as_ptr() => _,
            zp = in(reg) p.zp_out,
            positions = in(reg) positions,
            cnt = inout(reg) oc => _,
            inout("r1") y.as_mut_ptr() => _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
        );
    }
}

/// Writes the patch of output position `pos` (flat `i·OW + j`) to `col` `[C, KH, KW]`:
/// the input codes, `zp` where the window lies in the padding.
fn im2col(x: &[i8], xd: Dims, g: ConvGeom, zp: i32, ow: usize, pos: usize, col: &mut [i8]) {
    let (i, j) = (pos / ow, pos % ow);
    let zp = zp as i8;
    // Columns q of the window inside the input: q_lo..q_hi, at input column j·stride + q − pad.
    let left = (j * g.stride).wrapping_sub(g.pad);
    let q_lo = g.pad.saturating_sub(j * g.stride).min(g.kw);
    let q_hi = (xd.w + g.pad)
        .saturating_sub(j * g.stride)
        .clamp(q_lo, g.kw);
    let mut rows = col.chunks_exact_mut(g.kw);
    for c in 0..xd.c {
        for kp in 0..g.kh {
            let Some(dst) = rows.next() else { return };
            let Some(r) = tap(i, kp, g.stride, g.pad, xd.h) else {
                dst.fill(zp);
                continue;
            };
            let row = &x[(c * xd.h + r) * xd.w..][..xd.w]; // [W]
            if q_lo > 0 || q_hi < g.kw {
                fill(dst, zp);
            }
            let s0 = left.wrapping_add(q_lo);
            copy(&mut dst[q_lo..q_hi], &row[s0..s0 + (q_hi - q_lo)]);
        }
    }
}

/// Writes the patch of output position `pos` to `col` `[C, KH, KW]` for `KW ≤ 16`: `zp`
/// everywhere when the window reaches into the padding, then the window's rows and
/// columns that lie inside the input, one predicated load and store per row.
fn im2col_rows(x: &[i8], xd: Dims, g: ConvGeom, zp: i32, ow: usize, pos: usize, col: &mut [i8]) {
    debug_assert!(g.kw <= 16);
    let r0 = (pos / ow * g.stride) as isize - g.pad as isize; // first input row (may be < 0)
    let s0 = (pos % ow * g.stride) as isize - g.pad as isize; // first input column
                                                              // Window rows p (columns q) inside the input: lo and count.
    let range = |v0: isize, k: usize, len: usize| {
        let lo = (-v0).clamp(0, k as isize) as usize;
        let hi = (len as isize - v0).clamp(lo as isize, k as isize) as usize;
        (lo, hi - lo)
    };
    let (p_lo, p_n) = range(r0, g.kh, xd.h);
    let (q_lo, q_n) = range(s0, g.kw, xd.w);
    if p_n < g.kh || q_n < g.kw {
        fill(col, zp as i8);
    }
    if p_n == 0 || q_n == 0 {
        return;
    }
    let start = ((r0 + p_lo as isize) * xd.w as isize + s0 + q_lo as isize) as usize;
    let src = &x[start..][..((xd.c - 1) * xd.h + p_n - 1) * xd.w + q_n];
    let dst = &mut col[p_lo * g.kw + q_lo..][..((xd.c - 1) * g.kh + p_n - 1) * g.kw + q_n];
    // SAFETY: `C` channels of `p_n` rows of `q_n ≤ 16` bytes, rows `W` (`KW`) apart and
    // channels `H·W` (`KH·KW`) apart, end exactly at the ends of `src` (`dst`); every load
    // and store is predicated to `q_n` bytes. q0 is clobbered, VPR saved and restored.
    unsafe {
        asm!(
            "vmrs {vpr}, p0",
            "vctp.8 {len}",
            "1:",
            "mov {r}, {rows}",
            "2:",
            "vpstt",
            "vldrbt.8 q0, [{src}]",
            "vstrbt.8 q0, [{dst}]",
            "add {src}, {w}",
            "add {dst}, {kw}",
            "subs {r}, #1",
            "bne 2b",
            "add {src}, {src_skip}",
            "add {dst}, {dst_skip}",
            "subs {c}, #1",
            "bne 1b",
            "vmsr p0, {vpr}",
            vpr = out(reg) _,
            len = in(reg) q_n,
            rows = in(reg) p_n,
            r = out(reg) _,
            w = in(reg) xd.w,
            kw = in(reg) g.kw,
            src_skip = in(reg) (xd.h - p_n) * xd.w,
            dst_skip = in(reg) (g.kh - p_n) * g.kw,
            c = inout(reg) xd.c => _,
            src = inout(reg) src.as_ptr() => _,
            dst = inout(reg) dst.as_mut_ptr() => _,
            out("d0") _, out("d1") _,
            options(nostack),
        );
    }
}

/// Writes the patches of four neighbouring output positions of one row (stride 1, all
/// inside the input) to the four columns of `cols`: each window row is read once per
/// column at offsets 0..4 from `window` (the first window's top-left element) and stored to
/// all four columns in one pass.
///
/// # Safety
/// `window` is readable for `((C − 1)·H + KH − 1)·W + KW + 3` bytes, `cols` writable for
/// `4·C·KH·KW`, and `1 ≤ KW ≤ 16`.
#[inline(always)]
unsafe fn im2col_run(window: *const i8, xd: Dims, g: ConvGeom, cols: &mut [i8]) {
    let taps = xd.c * g.kh * g.kw;
    debug_assert!(cols.len() >= COLS * taps && (1..=16).contains(&g.kw));
    let d = cols.as_mut_ptr();
    // SAFETY: every load and store is predicated to the KW bytes of a row, rows as the
    // caller guarantees; q0, q1 are clobbered, VPR saved and restored.
    unsafe {
        asm!(
            "vmrs {vpr}, p0",
            "vctp.8 {kw}",
            "1:",
            "mov {r}, {kh}",
            "2:",
            "vpstttt",
            "vldrbt.8 q0, [{src}]",
            "vstrbt.8 q0, [{d0}]",
            "vldrbt.8 q1, [{src}, #1]",
            "vstrbt.8 q1, [{d1}]",
            "vpstttt",
            "vldrbt.8 q0, [{src}, #2]",
            "vstrbt.8 q0, [{d2}]",
            "vldrbt.8 q1, [{src}, #3]",
            "vstrbt.8 q1, [{d3}]",
            "add {src}, {w}",
            "add {d0}, {kw}",
            "add {d1}, {kw}",
            "add {d2}, {kw}",
            "add {d3}, {kw}",
            "subs {r}, #1",
            "bne 2b",
            "add {src}, {skip}",
            "subs {c}, #1",
            "bne 1b",
            "vmsr p0, {vpr}",
            vpr = out(reg) _,
            kw = in(reg) g.kw,
            kh = in(reg) g.kh,
            r = out(reg) _,
            w = in(reg) xd.w,
            skip = in(reg) (xd.h - g.kh) * xd.w,
            c = inout(reg) xd.c => _,
            src = inout(reg) window => _,
            d0 = inout(reg) d => _,
            d1 = inout(reg) d.add(taps) => _,
            d2 = inout(reg) d.add(2 * taps) => _,
            d3 = inout(reg) d.add(3 * taps) => _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            options(nostack),
        );
    }
}

/// `dst.fill(v)`, as one tail-predicated loop (`fill` would call `memset`, whose set-up
/// costs more than a window row of a few bytes).
#[inline(always)]
fn fill(dst: &mut [i8], v: i8) {
    // SAFETY: `WLSTP.8` runs ⌈len/16⌉ turns predicated to `dst.len()` bytes, so the stores
    // stay inside `dst`; q0 is declared clobbered.
    unsafe {
        asm!(
            "vdup.8 q0, {v}",
            "wlstp.8 lr, {n}, 3f",
            "2:",
            "vstrb.8 q0, [{d}], #16",
            "letp lr, 2b",
            "3:",
            v = in(reg) v as i32,
            n = in(reg) dst.len(),
            d = inout(reg) dst.as_mut_ptr() => _,
            out("lr") _,
            out("d0") _, out("d1") _,
            options(nostack),
        );
    }
}

/// `dst.copy_from_slice(src)` (same lengths), as one tail-predicated loop.
#[inline(always)]
fn copy(dst: &mut [i8], src: &[i8]) {
    debug_assert_eq!(dst.len(), src.len());
    let n = dst.len().min(src.len());
    // SAFETY: `WLSTP.8` predicates every access to the first `n` bytes of `src` and `dst`,
    // which both have at least `n`; q0 is declared clobbered.
    unsafe {
        asm!(
            "wlstp.8 lr, {n}, 3f",
            "2:",
            "vldrb.8 q0, [{s}], #16",
            "vstrb.8 q0, [{d}], #16",
            "letp lr, 2b",
            "3:",
            n = in(reg) n,
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            out("lr") _,
            out("d0") _, out("d1") _,
            options(nostack),
        );
    }
}

/// `Σ_t w[t]` (wrapping), with `VADDVA.S8`.
fn weight_sum(w: &[i8]) -> i32 {
    let mut sum = 0i32;
    // SAFETY: `DLSTP.8` predicates the loads to `w.len()` bytes; q0 is declared clobbered.
    unsafe {
        asm!(
            "dlstp.8 lr, {n}",
            "2:",
            "vldrb.8 q0, [{pw}], #16",
            "vaddva.s8 r0, q0", // the accumulator must be an even register
            "letp lr, 2b",
            n = in(reg) w.len(),
            pw = inout(reg) w.as_ptr() => _,
            inout("r0") sum,
            out("lr") _,
            out("d0") _, out("d1") _,
            options(pure, readonly, nostack),
        );
    }
    sum
}

/// For every output channel `o < oc`: `sums[4·o + c] = Σ_t w[o·taps + t]·col_c[t]` for the
/// four im2col columns `c` (each `taps` bytes from `cols`). One asm loop over the channels,
/// so the channel loop costs no spills: per channel, four pointer set-ups and one
/// tail-predicated loop of a weight load and four column loads and `VMLADAVA`s per 16 taps.
///
/// # Safety
/// `w` is readable for `oc·taps` bytes, `cols` for `4·taps`, `sums` writable for `4·oc`
/// aligned i32s, and `taps, oc ≥ 1`.
#[inline(always)]
unsafe fn dot_block(w: *const i8, cols: *const i8, taps: usize, oc: usize, sums: *mut i32) {
    // SAFETY: the caller guarantees the memory; `DLSTP.8` predicates each channel's last
    // turn to its remaining taps. The column base and channel count live in 8 bytes of stack
    // the block pushes and pops itself; q0, q1 and the accumulators are declared clobbered.
    unsafe {
        asm!(
            "sub sp, #8",
            "str {c0}, [sp]",
            "str {c1}, [sp, #4]",
            "1:",
            "ldr {c0}, [sp]",
            "add {c1}, {c0}, {taps}",
            "add {c2}, {c1}, {taps}",
            "add {c3}, {c2}, {taps}",
            "mov {pw}, {wrow}",
            "add {wrow}, {wrow}, {taps}",
            "mov r0, #0",
            "mov r2, #0",
            "mov r4, #0",
            "mov r8, #0",
            "dlstp.8 lr, {taps}",
            "2:",
            "vldrb.8 q0, [{pw}], #16",
            "vldrb.8 q1, [{c0}], #16",
            "vmladava.s8 r0, q0, q1",
            "vldrb.8 q1, [{c1}], #16",
            "vmladava.s8 r2, q0, q1",
            "vldrb.8 q1, [{c2}], #16",
            "vmladava.s8 r4, q0, q1",
            "vldrb.8 q1, [{c3}], #16",
            "vmladava.s8 r8, q0, q1",
            "letp lr, 2b",
            "stm {out}!, {{r0, r2, r4, r8}}",
            "ldr {c0}, [sp, #4]",
            "subs {c0}, {c0}, #1",
            "str {c0}, [sp, #4]",
            "bne 1b",
            "add sp, #8",
            c0 = inout(reg) cols => _,
            c1 = inout(reg) oc => _,
            c2 = out(reg) _,
            c3 = out(reg) _,
            taps = in(reg) taps,
            wrow = inout(reg) w => _,
            pw = out(reg) _,
            out = inout(reg) sums => _,
            out("r0") _,
            out("r2") _,
            out("r4") _,
            out("r8") _,
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
        );
    }
}
