// Local contrast normalization (see the CPU backend's lcn.rs for the formulas), one block of
// LCN_THREADS threads per sample. Per-pixel intermediates live in `scratch`, LCN_PLANES
// planes of h*w floats per sample. Window sums are gathers with the CPU's tap order, channel
// sums run in channel order, and the two whole-plane sums (c, dc) are f64 fixed trees, so
// results do not depend on scheduling. Launch with blockDim.x == LCN_THREADS.

#define LCN_THREADS 256
#define LCN_PLANES 6

__device__ double lcn_block_sum(double v) {
    __shared__ double part[LCN_THREADS];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int w = LCN_THREADS / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    double s = part[0];
    __syncthreads();
    return s;
}

// (W * src)[j, k]: taps in row-major window order, zero outside the plane.
__device__ float window_at(const float* src, int h, int w, const float* win, int size, int j,
                           int k) {
    int r = size / 2;
    float acc = 0.0f;
    for (int p = 0; p < size; p++) {
        int y = j + p - r;
        if (y < 0 || y >= h) continue;
        for (int q = 0; q < size; q++) {
            int x = k + q - r;
            if (x < 0 || x >= w) continue;
            acc += win[p * size + q] * src[y * w + x];
        }
    }
    return acc;
}

// (W^T * src)[j, k], the adjoint (scatter) of window_at as a gather, in the CPU's order
// (source rows ascending, i.e. p descending, then q ascending).
__device__ float window_adjoint_at(const float* src, int h, int w, const float* win, int size,
                                   int j, int k) {
    int r = size / 2;
    float acc = 0.0f;
    for (int p = size - 1; p >= 0; p--) {
        int y = j - p + r;
        if (y < 0 || y >= h) continue;
        for (int q = 0; q < size; q++) {
            int x = k - q + r;
            if (x < 0 || x >= w) continue;
            acc += win[p * size + q] * src[y * w + x];
        }
    }
    return acc;
}

// The forward intermediates of one sample: a (channel mean), m, q, s, d; returns c.
__device__ float lcn_parts(const float* x, int c, int h, int w, const float* win, int size,
                           float eps, float* a, float* m, float* q, float* s, float* d) {
    int hw = h * w;
    float cf = (float)c;
    for (int j = threadIdx.x; j < hw; j += LCN_THREADS) {
        float acc = 0.0f;
        for (int i = 0; i < c; i++) acc += x[(long long)i * hw + j];
        a[j] = acc / cf;
    }
    __syncthreads();
    for (int j = threadIdx.x; j < hw; j += LCN_THREADS) m[j] = window_at(a, h, w, win, size, j / w, j % w);
    __syncthreads();
    for (int j = threadIdx.x; j < hw; j += LCN_THREADS) {
        float acc = 0.0f;
        for (int i = 0; i < c; i++) {
            float v = x[(long long)i * hw + j] - m[j];
            acc += v * v;
        }
        q[j] = acc / cf;
    }
    __syncthreads();
    double part = 0.0;
    for (int j = threadIdx.x; j < hw; j += LCN_THREADS) {
        float sv = sqrtf(fmaxf(window_at(q, h, w, win, size, j / w, j % w), 0.0f));
        s[j] = sv;
        part += (double)sv;
    }
    float cm = (float)(lcn_block_sum(part) / (double)hw);
    for (int j = threadIdx.x; j < hw; j += LCN_THREADS) d[j] = fmaxf(fmaxf(cm, s[j]), eps);
    __syncthreads();
    return cm;
}

extern "C" __global__ void lcn_fwd_f32(float* y, const float* x, const float* win, float* scratch,
                                       int c, int h, int w, int size, float eps) {
    int hw = h * w;
    long long off = (long long)blockIdx.x * c * hw;
    float* t = scratch + (long long)blockIdx.x * LCN_PLANES * hw;
    float *a = t, *m = t + hw, *q = t + 2 * hw, *s = t + 3 * hw, *d = t + 4 * hw;
    lcn_parts(x + off, c, h, w, win, size, eps, a, m, q, s, d);
    for (long long e = threadIdx.x; e < (long long)c * hw; e += LCN_THREADS) {
        int j = (int)(e % hw);
        y[off + e] = (x[off + e] - m[j]) / d[j];
    }
}

extern "C" __global__ void lcn_bwd_f32(float* dx, const float* x, const float* dy,
                                       const float* win, float* scratch, int c, int h, int w,
                                       int size, float eps) {
    int hw = h * w;
    float cf = (float)c;
    long long off = (long long)blockIdx.x * c * hw;
    const float* xs = x + off;
    const float* dys = dy + off;
    float* dxs = dx + off;
    float* t = scratch + (long long)blockIdx.x * LCN_PLANES * hw;
    float *a = t, *m = t + hw, *q = t + 2 * hw, *s = t + 3 * hw, *d = t + 4 * hw, *g = t + 5 * hw;
    float cm = lcn_parts(xs, c, h, w, win, size, eps, a, m, q, s, d);
    // g = dL/dd = -sum_i dy*v / d^2, routed through d = max(max(c, s), eps).
    double dc_part = 0.0;
    for (int j = threadIdx.x; j < hw; j += LCN_THREADS) {
        float acc = 0.0f;
        for (int i = 0; i < c; i++) {
            long long e = (long long)i * hw + j;
            acc -= dys[e] * (xs[e] - m[j]);
        }
        float gd = acc / (d[j] * d[j]);
        float sv = s[j];
        float gj = 0.0f;
        if (fmaxf(cm, sv) >= eps) {
            if (cm >= sv) {
                dc_part += (double)gd;
            } else {
                gj = gd;
            }
        }
        g[j] = gj;
    }
    float dc_each = (float)lcn_block_sum(dc_part) / (float)hw;
    // c = mean(s), s = sqrt(W * q): dL/d(W * q) = dL/ds / 2s (0 where s = 0).
    for (int j = threadIdx.x; j < hw; j += LCN_THREADS) {
        float sv = s[j];
        g[j] = sv > 0.0f ? (g[j] + dc_each) / (2.0f * sv) : 0.0f;
    }
    __syncthreads();
    for (int j = threadIdx.x; j < hw; j += LCN_THREADS) q[j] = window_adjoint_at(g, h, w, win, size, j / w, j % w);
    __syncthreads();
    // dv = dy/d + 2*v*dq/C into dx; a = dL/dm = -sum_i dv (channel order).
    for (int j = threadIdx.x; j < hw; j += LCN_THREADS) {
        float acc = 0.0f;
        for (int i = 0; i < c; i++) {
            long long e = (long long)i * hw + j;
            float v = xs[e] - m[j];
            float dv = dys[e] / d[j] + 2.0f * v * q[j] / cf;
            dxs[e] = dv;
            acc -= dv;
        }
        a[j] = acc;
    }
    __syncthreads();
    // m = W * a and a = sum_i x / C: dx += (W^T * dm) / C.
    for (int j = threadIdx.x; j < hw; j += LCN_THREADS) {
        float da = window_adjoint_at(a, h, w, win, size, j / w, j % w);
        for (int i = 0; i < c; i++) dxs[(long long)i * hw + j] += da / cf;
    }
}
