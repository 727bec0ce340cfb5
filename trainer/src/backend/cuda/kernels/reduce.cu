// Fixed-order reductions: one block of REDUCE_THREADS threads per output value (a channel, a
// row or a column). Thread t sums elements t, t + REDUCE_THREADS, ... in order, in f64, then
// the block adds the partials as a fixed tree. No atomics, so every run gives the same bits;
// launch with blockDim.x == REDUCE_THREADS (the Rust side's `REDUCE_THREADS`).

#define REDUCE_THREADS 256

// The block's sum of `v`, visible to every thread.
__device__ double block_sum(double v) {
    __shared__ double part[REDUCE_THREADS];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int w = REDUCE_THREADS / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    double s = part[0];
    __syncthreads();
    return s;
}

// Elements of channel `blockIdx.x` in `[outer, channels, inner]` (the last outer block may be
// cut at `len`): the j-th of them, for j < outer*inner.
__device__ __forceinline__ long long channel_elem(long long j, long long inner, int channels) {
    long long o = j / inner;
    return (o * channels + blockIdx.x) * inner + j % inner;
}

// `outer` is 0 for an empty channel stride (a convolution with no output pixels): no
// integer division by zero.
#define CHANNEL_LOOP(i, len, channels, inner)                                     \
    long long stride_ = (long long)(channels) * (inner);                          \
    long long outer = stride_ > 0 ? ((len) + stride_ - 1) / stride_ : 0;          \
    for (long long j = threadIdx.x, i; j < outer * (inner); j += REDUCE_THREADS) \
        if ((i = channel_elem(j, inner, channels)) < (len))

// out[c] = sum of x over channel c (bias gradients: conv inner = P, linear inner = 1).
extern "C" __global__ void channel_sum_f32(float* out, const float* x, long long len,
                                           int channels, long long inner) {
    double acc = 0.0;
    CHANNEL_LOOP(i, len, channels, inner) { acc += (double)x[i]; }
    double s = block_sum(acc);
    if (threadIdx.x == 0) out[blockIdx.x] = (float)s;
}

// out[c] = sum of x*dy over channel c (the gain's gradient).
extern "C" __global__ void channel_dot_f32(float* out, const float* x, const float* dy,
                                           long long len, int channels, long long inner) {
    double acc = 0.0;
    CHANNEL_LOOP(i, len, channels, inner) { acc += (double)x[i] * (double)dy[i]; }
    double s = block_sum(acc);
    if (threadIdx.x == 0) out[blockIdx.x] = (float)s;
}

// out[c] = -sum of sign(x)*dy over channel c where |x| > theta[c] (the threshold's gradient).
extern "C" __global__ void shrink_dtheta_f32(float* out, const float* theta, const float* x,
                                             const float* dy, long long len, int channels,
                                             long long inner) {
    float t = theta[blockIdx.x];
    double acc = 0.0;
    CHANNEL_LOOP(i, len, channels, inner) {
        float v = x[i];
        if (fabsf(v) > t) {
            double s = v > 0.0f ? 1.0 : (v < 0.0f ? -1.0 : 0.0);
            acc += -s * (double)dy[i];
        }
    }
    double s = block_sum(acc);
    if (threadIdx.x == 0) out[blockIdx.x] = (float)s;
}

// out[r] = sum_c x[r, c]^2 (one block per row).
extern "C" __global__ void row_sq_norms_f32(float* out, const float* x, long long cols) {
    const float* row = x + blockIdx.x * cols;
    double acc = 0.0;
    for (long long c = threadIdx.x; c < cols; c += REDUCE_THREADS) {
        double v = (double)row[c];
        acc += v * v;
    }
    double s = block_sum(acc);
    if (threadIdx.x == 0) out[blockIdx.x] = (float)s;
}

// out[r] = sum_c |x[r, c]|.
extern "C" __global__ void row_abs_sums_f32(float* out, const float* x, long long cols) {
    const float* row = x + blockIdx.x * cols;
    double acc = 0.0;
    for (long long c = threadIdx.x; c < cols; c += REDUCE_THREADS) {
        acc += (double)fabsf(row[c]);
    }
    double s = block_sum(acc);
    if (threadIdx.x == 0) out[blockIdx.x] = (float)s;
}

// Column blockIdx.x of d [rows, cols] divided by its l2 norm (f64); a zero column is kept.
extern "C" __global__ void normalize_columns_f32(float* d, long long rows, long long cols) {
    long long c = blockIdx.x;
    double acc = 0.0;
    for (long long r = threadIdx.x; r < rows; r += REDUCE_THREADS) {
        double v = (double)d[r * cols + c];
        acc += v * v;
    }
    double s = block_sum(acc);
    double inv = s > 0.0 ? 1.0 / sqrt(s) : 1.0;
    for (long long r = threadIdx.x; r < rows; r += REDUCE_THREADS) {
        d[r * cols + c] = (float)((double)d[r * cols + c] * inv);
    }
}
