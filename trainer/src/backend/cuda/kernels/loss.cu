// Losses over logits [n, classes], one thread per sample (classes is small), mirroring the
// CPU backend's loops. Writes dz and, per sample, `per[i]` = its loss term (f64) and
// `per[n + i]` = 1 when its first largest logit is the label; the host sums `per` in
// sample order.

// Index of the first largest logit.
__device__ __forceinline__ int argmax(const float* z, int classes) {
    int best = 0;
    for (int j = 1; j < classes; j++) {
        if (z[j] > z[best]) best = j;
    }
    return best;
}

// Records sample i's `correct` flag; false, with its loss poisoned, for a label out of range
// (callers validate labels: poison rather than read out of bounds).
__device__ __forceinline__ bool sample_start(double* per, int n, int i, const float* z, int y,
                                             int classes) {
    if (y >= classes) {
        per[i] = nan("");
        per[n + i] = 0.0;
        return false;
    }
    per[n + i] = argmax(z, classes) == y ? 1.0 : 0.0;
    return true;
}

// Softmax + negative log-likelihood: dz = (softmax(z) - onehot(y)) / n.
extern "C" __global__ void loss_nll_f32(float* dz, double* per, const float* logits,
                                        const unsigned char* labels, int n, int classes,
                                        float inv_n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float* z = logits + (long long)i * classes;
    float* g = dz + (long long)i * classes;
    int y = labels[i];
    if (!sample_start(per, n, i, z, y, classes)) return;
    float mx = __int_as_float(0xff800000);  // -inf
    for (int j = 0; j < classes; j++) mx = fmaxf(mx, z[j]);
    float sum = 0.0f;
    for (int j = 0; j < classes; j++) {
        float e = expf(z[j] - mx);
        g[j] = e;
        sum += e;
    }
    per[i] = (double)(mx + logf(sum) - z[y]);
    float scale = inv_n / sum;
    for (int j = 0; j < classes; j++) g[j] *= scale;
    g[y] -= inv_n;
}

// Multiclass hinge: sum over j != y of max(0, 1 - (z_y - z_j)).
extern "C" __global__ void loss_hinge_f32(float* dz, double* per, const float* logits,
                                          const unsigned char* labels, int n, int classes,
                                          float inv_n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float* z = logits + (long long)i * classes;
    float* g = dz + (long long)i * classes;
    int y = labels[i];
    if (!sample_start(per, n, i, z, y, classes)) return;
    double total = 0.0;
    float active = 0.0f;
    for (int j = 0; j < classes; j++) {
        float margin = 1.0f - (z[y] - z[j]);
        g[j] = 0.0f;
        if (j != y && margin > 0.0f) {
            total += (double)margin;
            g[j] = inv_n;
            active += 1.0f;
        }
    }
    g[y] = -active * inv_n;
    per[i] = total;
}
