// Nonlinearities and dropout. `kind`: 0 = ReLU, 1 = tanh, 2 = |x| (Activation's order).

#define GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// The CPU backend's tanh: one f64 exp, identity below 1e-4, sign above 10.
__device__ __forceinline__ float tanh_ref(float x) {
    float a = fabsf(x);
    if (a < 1e-4f) return x;
    if (a > 10.0f) return x > 0.0f ? 1.0f : -1.0f;
    double e = exp(2.0 * (double)x);
    return (float)((e - 1.0) / (e + 1.0));
}

extern "C" __global__ void act_fwd_f32(float* y, const float* x, long long n, int kind) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        float r;
        if (kind == 0) {
            r = fmaxf(v, 0.0f);
        } else if (kind == 1) {
            r = tanh_ref(v);
        } else {
            r = fabsf(v);
        }
        y[i] = r;
    }
}

// dx = f'(x)*dy: ReLU and |x| from x (0 at 0), tanh from y (1 - y^2).
extern "C" __global__ void act_bwd_f32(float* dx, const float* x, const float* y,
                                       const float* dy, long long n, int kind) {
    GRID_STRIDE(i, n) {
        float g = dy[i];
        float v = x[i];
        float r;
        if (kind == 0) {
            r = v > 0.0f ? g : 0.0f;
        } else if (kind == 1) {
            float t = y[i];
            r = g * (1.0f - t * t);
        } else {
            r = v > 0.0f ? g : (v < 0.0f ? -g : 0.0f);
        }
        dx[i] = r;
    }
}

// geometry::dropout_keep, bit for bit: SplitMix64 of (seed, index), 24 bits -> [0, 1).
__device__ __forceinline__ bool dropout_keep(unsigned long long seed, unsigned long long index,
                                             float p) {
    unsigned long long z = seed ^ (index * 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    float u = (float)(z >> 40) * (1.0f / 16777216.0f);
    return u >= p;
}

// dst = src*scale where kept, else 0; `scale` = 1/(1 - p) computed on the host in f32.
__device__ __forceinline__ void dropout_apply(float* dst, const float* src, long long n,
                                              unsigned long long seed, float p, float scale) {
    GRID_STRIDE(i, n) {
        dst[i] = dropout_keep(seed, (unsigned long long)i, p) ? src[i] * scale : 0.0f;
    }
}

extern "C" __global__ void dropout_fwd_f32(float* y, const float* x, long long n,
                                           unsigned long long seed, float p, float scale) {
    dropout_apply(y, x, n, seed, p, scale);
}

extern "C" __global__ void dropout_bwd_f32(float* dx, const float* dy, long long n,
                                           unsigned long long seed, float p, float scale) {
    dropout_apply(dx, dy, n, seed, p, scale);
}
