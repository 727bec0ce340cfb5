// Elementwise kernels: fill, axpby, add_sign, soft threshold, per-channel gain, bias rows.
// One grid-stride loop each; every element is written by exactly one thread, so results do
// not depend on the launch shape. Compiled without fast math and without FMA contraction
// (`--fmad=false`), so each element's arithmetic is the CPU backend's, operation for operation.

#define GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// Channel of element `i` of a per-channel tensor: `(i / inner) % channels`.
__device__ __forceinline__ int channel_of(long long i, long long inner, int channels) {
    return (int)((i / inner) % channels);
}

// A threshold: `theta[c]` when `channels > 0`, else `scalar`.
__device__ __forceinline__ float theta_at(const float* theta, int channels, long long inner,
                                          float scalar, long long i) {
    return channels > 0 ? theta[channel_of(i, inner, channels)] : scalar;
}

// y[i] = value
extern "C" __global__ void fill_f32(float* y, long long n, float value) {
    GRID_STRIDE(i, n) { y[i] = value; }
}

// y = alpha*x + beta*y; y is not read when beta == 0.
extern "C" __global__ void axpby_f32(float* y, const float* x, long long n, float alpha,
                                     float beta) {
    if (beta == 0.0f) {
        GRID_STRIDE(i, n) { y[i] = alpha * x[i]; }
    } else {
        GRID_STRIDE(i, n) { y[i] = alpha * x[i] + beta * y[i]; }
    }
}

// y += alpha*sign(x), sign(0) = 0 (NaN x: y += alpha*NaN, as Rust's signum).
extern "C" __global__ void add_sign_f32(float* y, const float* x, long long n, float alpha) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        if (v != 0.0f) {
            float s = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v);
            y[i] += alpha * s;
        }
    }
}

// y = sign(x)*max(|x| - theta, 0)
extern "C" __global__ void shrink_fwd_f32(float* y, const float* x, long long n,
                                          const float* theta, int channels, long long inner,
                                          float scalar) {
    GRID_STRIDE(i, n) {
        float t = theta_at(theta, channels, inner, scalar, i);
        float v = x[i];
        y[i] = v > t ? v - t : (v < -t ? v + t : 0.0f);
    }
}

// dx = dy where |x| > theta, else 0.
extern "C" __global__ void shrink_bwd_f32(float* dx, const float* x, const float* dy,
                                          long long n, const float* theta, int channels,
                                          long long inner, float scalar) {
    GRID_STRIDE(i, n) {
        float t = theta_at(theta, channels, inner, scalar, i);
        dx[i] = fabsf(x[i]) > t ? dy[i] : 0.0f;
    }
}

// y = g[c]*x (also the gain's dx = g[c]*dy).
extern "C" __global__ void scale_fwd_f32(float* y, const float* g, const float* x, long long n,
                                         int channels, long long inner) {
    GRID_STRIDE(i, n) { y[i] = g[channel_of(i, inner, channels)] * x[i]; }
}

// y[i] = b[c]: a bias broadcast over `[outer, channels, inner]` (linear: inner = 1;
// convolution: inner = out_h*out_w), before a GEMM accumulates into it.
extern "C" __global__ void bias_rows_f32(float* y, const float* b, long long n, int channels,
                                         long long inner) {
    GRID_STRIDE(i, n) { y[i] = b[channel_of(i, inner, channels)]; }
}
