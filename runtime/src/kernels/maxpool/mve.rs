//! Armv8.1-M Helium (MVE) max pooling. These cores also have the DSP extension: int8 2×2
//! windows with stride 2 run the DSP kernel (`SSUB8` + `SEL`). Other windows run the
//! reference: the DSP kernel's plain row loop, auto-vectorized by LLVM for Helium, fails
//! `crate::check` under QEMU 7.2 (k = 3 windows lose elements; not yet traced to LLVM or
//! QEMU), so it is not used here.

use crate::kernels::Dims;

pub(crate) use super::dsp::maxpool_f32;

/// int8: `y[c,i,j] = max_{p,q < k} x[c, i·stride + p, j·stride + q]`, as the reference.
pub(crate) fn maxpool_s8(
    x: &[i8],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    if k == 2 && stride == 2 {
        super::dsp::maxpool_s8(x, xd, k, stride, yd, y, scratch)
    } else {
        super::reference::maxpool_s8(x, xd, k, stride, yd, y, scratch)
    }
}
