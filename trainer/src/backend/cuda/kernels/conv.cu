// Convolution helpers around cuBLAS: im2col, its adjoint col2im, and a transpose of the
// output gradient, for a chunk of `count` samples starting at sample `first`.
//
// The column matrix is "wide": `col [K, count*P]` with `K = in_c*k*k`, row
// `(ci*k + ki)*k + kj`, column `i*P + oy*out_w + ox` (`P = out_h*out_w`), so one GEMM
// covers the chunk for the weight gradient and the input gradient.

#define GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

extern "C" __global__ void im2col_f32(float* col, const float* x, long long first, int count,
                                      int in_c, int in_h, int in_w, int k, int stride, int pad,
                                      int out_h, int out_w) {
    long long p_len = (long long)out_h * out_w;
    long long cols = count * p_len;
    long long total = (long long)in_c * k * k * cols;
    GRID_STRIDE(t, total) {
        long long r = t / cols, q = t % cols;
        long long i = q / p_len;
        int p = (int)(q % p_len);
        int oy = p / out_w, ox = p % out_w;
        int kj = (int)(r % k), ki = (int)((r / k) % k), ci = (int)(r / ((long long)k * k));
        int iy = oy * stride + ki - pad, ix = ox * stride + kj - pad;
        float v = 0.0f;
        if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) {
            v = x[(((first + i) * in_c + ci) * in_h + iy) * (long long)in_w + ix];
        }
        col[t] = v;
    }
}

// dx[first + i] = col2im(dcol): each input element sums the column entries that read it,
// in (ki, kj) order (the CPU's order), starting from 0.
extern "C" __global__ void col2im_f32(float* dx, const float* dcol, long long first, int count,
                                      int in_c, int in_h, int in_w, int k, int stride, int pad,
                                      int out_h, int out_w) {
    long long p_len = (long long)out_h * out_w;
    long long cols = count * p_len;
    long long plane = (long long)in_h * in_w;
    long long sample = in_c * plane;
    GRID_STRIDE(t, count * sample) {
        long long i = t / sample, rem = t % sample;
        int ci = (int)(rem / plane);
        int pix = (int)(rem % plane);
        int iy = pix / in_w, ix = pix % in_w;
        float acc = 0.0f;
        for (int ki = 0; ki < k; ki++) {
            int ty = iy + pad - ki;
            if (ty < 0 || ty % stride != 0) continue;
            int oy = ty / stride;
            if (oy >= out_h) continue;
            for (int kj = 0; kj < k; kj++) {
                int tx = ix + pad - kj;
                if (tx < 0 || tx % stride != 0) continue;
                int ox = tx / stride;
                if (ox >= out_w) continue;
                long long r = ((long long)ci * k + ki) * k + kj;
                acc += dcol[r * cols + i * p_len + oy * out_w + ox];
            }
        }
        dx[first * sample + t] = acc;
    }
}

// dst [channels, count*P] from src [n, channels, P] samples first..first+count.
extern "C" __global__ void nchw_to_cnhw_f32(float* dst, const float* src, long long first,
                                            int count, int channels, long long p_len) {
    long long cols = count * p_len;
    GRID_STRIDE(t, channels * cols) {
        long long c = t / cols, q = t % cols;
        long long i = q / p_len, p = q % p_len;
        dst[t] = src[((first + i) * channels + c) * p_len + p];
    }
}
