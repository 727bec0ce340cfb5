// Max and average pooling over `planes = n*c` planes of `in_h x in_w` (no padding).
// Forward: one thread per output. Backward: one thread per input element, gathering the
// outputs whose windows cover it in (oy, ox) order, so no two threads write one element
// and the result does not depend on scheduling (no atomics).

#define GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// Plane offset of the first maximum (row-major scan, strict >) of window (oy, ox).
__device__ __forceinline__ int first_max(const float* plane, int in_w, int k, int stride, int oy,
                                         int ox, float* best) {
    int y0 = oy * stride, x0 = ox * stride;
    int at = y0 * in_w + x0;
    float m = plane[at];
    for (int ki = 0; ki < k; ki++) {
        for (int kj = 0; kj < k; kj++) {
            int off = (y0 + ki) * in_w + x0 + kj;
            float v = plane[off];
            if (v > m) {
                m = v;
                at = off;
            }
        }
    }
    *best = m;
    return at;
}

extern "C" __global__ void maxpool_fwd_f32(float* y, const float* x, long long planes, int in_h,
                                           int in_w, int k, int stride, int out_h, int out_w) {
    long long po = (long long)out_h * out_w;
    GRID_STRIDE(t, planes * po) {
        long long pl = t / po;
        int r = (int)(t % po);
        float m;
        first_max(x + pl * in_h * in_w, in_w, k, stride, r / out_w, r % out_w, &m);
        y[t] = m;
    }
}

// Range [lo, hi] of outputs along one axis whose window covers input coordinate `c`.
__device__ __forceinline__ void covering(int c, int k, int stride, int out, int* lo, int* hi) {
    int first = c - k + 1;
    *lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    int h = c / stride;
    *hi = h < out - 1 ? h : out - 1;
}

extern "C" __global__ void maxpool_bwd_f32(float* dx, const float* x, const float* dy,
                                           long long planes, int in_h, int in_w, int k,
                                           int stride, int out_h, int out_w) {
    long long pi = (long long)in_h * in_w;
    GRID_STRIDE(t, planes * pi) {
        long long pl = t / pi;
        int off = (int)(t % pi);
        int iy = off / in_w, ix = off % in_w;
        const float* plane = x + pl * pi;
        const float* g = dy + pl * out_h * out_w;
        int oy0, oy1, ox0, ox1;
        covering(iy, k, stride, out_h, &oy0, &oy1);
        covering(ix, k, stride, out_w, &ox0, &ox1);
        float acc = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++) {
            for (int ox = ox0; ox <= ox1; ox++) {
                float m;
                if (first_max(plane, in_w, k, stride, oy, ox, &m) == off) {
                    acc += g[oy * out_w + ox];
                }
            }
        }
        dx[t] = acc;
    }
}

// Each window's sum in row-major window order, divided by k^2.
extern "C" __global__ void avgpool_fwd_f32(float* y, const float* x, long long planes, int in_h,
                                           int in_w, int k, int stride, int out_h, int out_w) {
    long long po = (long long)out_h * out_w;
    float area = (float)(k * k);
    GRID_STRIDE(t, planes * po) {
        long long pl = t / po;
        int r = (int)(t % po);
        const float* plane = x + pl * in_h * in_w;
        int y0 = (r / out_w) * stride, x0 = (r % out_w) * stride;
        float acc = 0.0f;
        for (int ki = 0; ki < k; ki++) {
            for (int kj = 0; kj < k; kj++) {
                acc += plane[(y0 + ki) * in_w + x0 + kj];
            }
        }
        y[t] = acc / area;
    }
}

// dx = sum of dy/k^2 over the covering windows, in the CPU's order (oy, then kj).
extern "C" __global__ void avgpool_bwd_f32(float* dx, const float* dy, long long planes,
                                           int in_h, int in_w, int k, int stride, int out_h,
                                           int out_w) {
    long long pi = (long long)in_h * in_w;
    float area = (float)(k * k);
    GRID_STRIDE(t, planes * pi) {
        long long pl = t / pi;
        int off = (int)(t % pi);
        int iy = off / in_w, ix = off % in_w;
        const float* g = dy + pl * out_h * out_w;
        int oy0, oy1, ox0, ox1;
        covering(iy, k, stride, out_h, &oy0, &oy1);
        covering(ix, k, stride, out_w, &ox0, &ox1);
        float acc = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++) {
            for (int ox = ox1; ox >= ox0; ox--) {
                acc += g[oy * out_w + ox] / area;
            }
        }
        dx[t] = acc;
    }
}
