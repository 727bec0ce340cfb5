// Optimizer steps, one thread per parameter.

#define GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// v = momentum*v + (g + decay*w); w -= lr*v
extern "C" __global__ void sgd_update_f32(float* w, float* v, const float* g, long long n,
                                          float lr, float momentum, float decay) {
    GRID_STRIDE(i, n) {
        float vi = momentum * v[i] + (g[i] + decay * w[i]);
        v[i] = vi;
        w[i] -= lr * vi;
    }
}

// Adam; c1 = 1 - b1^t and c2 = 1 - b2^t come from the host (the CPU backend's powi).
extern "C" __global__ void adam_update_f32(float* w, float* m, float* v, const float* g,
                                           long long n, float lr, float b1, float b2, float eps,
                                           float c1, float c2) {
    GRID_STRIDE(i, n) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= lr * (mi / c1) / (sqrtf(vi / c2) + eps);
    }
}
