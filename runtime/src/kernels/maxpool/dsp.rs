//! ARMv7E-M DSP max pooling: int8 2×2 windows with stride 2 (LeNet's) four input bytes at a
//! time with `SSUB8` + `SEL` (a byte-wise signed maximum in two instructions); other
//! windows with plain row loops. f32 runs the reference.

use core::arch::asm;

use crate::kernels::Dims;

pub(crate) use super::reference::maxpool_f32;

/// Byte-wise signed maximum of two words of four int8.
#[inline(always)]
fn max4(a: u32, b: u32) -> u32 {
    let m: u32;
    // SAFETY: register-only arithmetic (`SSUB8` sets the GE flags `SEL` reads).
    unsafe {
        asm!(
            "ssub8 {m}, {a}, {b}",
            "sel {m}, {a}, {b}",
            a = in(reg) a,
            b = in(reg) b,
            m = out(reg) m,
            options(pure, nomem, nostack),
        );
    }
    m
}

/// int8: `y[c,i,j] = max_{p,q < k} x[c, i·stride + p, j·stride + q]`, as the reference.
/// `x` `[C, H, W]`, `y` `[C, OH, OW]`.
pub(crate) fn maxpool_s8(
    x: &[i8],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [i8],
    _scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    for c in 0..yd.c {
        for i in 0..yd.h {
            let y_row = &mut y[(c * yd.h + i) * yd.w..][..yd.w]; // [OW]
            let top = (c * xd.h + i * stride) * xd.w; // x[c, i·stride, 0]
            if k == 2 && stride == 2 {
                let (r0, r1) = (&x[top..][..xd.w], &x[top + xd.w..][..xd.w]);
                let word = |r: &[i8], at: usize| {
                    u32::from_le_bytes(bytemuck::cast([r[at], r[at + 1], r[at + 2], r[at + 3]]))
                };
                let mut pairs = y_row.chunks_exact_mut(2);
                for (n, out) in (&mut pairs).enumerate() {
                    // Columns 4n..4n+4 of both rows: vertical maxima, then each with its right
                    // neighbour; bytes 0 and 2 are the two outputs.
                    let v = max4(word(r0, 4 * n), word(r1, 4 * n));
                    let h = max4(v, v >> 8);
                    out[0] = h as i8;
                    out[1] = (h >> 16) as i8;
                }
                if let [last] = pairs.into_remainder() {
                    let j = 2 * (yd.w - 1);
                    *last = r0[j].max(r0[j + 1]).max(r1[j]).max(r1[j + 1]);
                }
                continue;
            }
            for (j, out) in y_row.iter_mut().enumerate() {
                let mut m = i8::MIN;
                for p in 0..k {
                    for &v in &x[top + p * xd.w + j * stride..][..k] {
                        m = m.max(v);
                    }
                }
                *out = m;
            }
        }
    }
}
