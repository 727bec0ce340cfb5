// The CUDA kernels on the host (emu.h) against the CPU backend: the inputs and the CPU
// outputs are raw little-endian f32 files in DIR, written by trainer/tests/cuda_kernels.rs.
// Every launch and cuBLAS call mirrors the Rust side (conv.rs, blas.rs, mod.rs); cuBLAS is
// emulated by a naive column-major SGEMM (f64 accumulation). Convolutions use chunks of 2
// samples so the chunked weight-gradient sum is exercised.
#include "emu.h"
#include "../kernels/elementwise.cu"
#include "../kernels/activation.cu"
#include "../kernels/optim.cu"
#include "../kernels/pool.cu"
#include "../kernels/conv.cu"
#include "../kernels/reduce.cu"
#include "../kernels/loss.cu"
#include "../kernels/lcn.cu"
#include <cstdio>
#include <string>
#include <algorithm>
using namespace std;
typedef vector<float> V;
string dir;
V load(string n) {
    FILE* f = fopen((dir + "/" + n + ".f32").c_str(), "rb");
    if (!f) { fprintf(stderr, "missing %s/%s.f32\n", dir.c_str(), n.c_str()); exit(2); }
    V v; float x; while (fread(&x, 4, 1, f) == 1) v.push_back(x); fclose(f); return v; }
int fails = 0;
void cmp(string name, const V& got, string ref, double tol = 1e-5) {
    V want = load(ref);
    double worst = 0; size_t at = 0;
    if (got.size() < want.size()) { printf("FAIL %s size %zu vs %zu\n", name.c_str(), got.size(), want.size()); fails++; return; }
    for (size_t i = 0; i < want.size(); i++) { double d = fabs((double)got[i] - want[i]) / (1.0 + fabs(want[i])); if (!(d <= worst)) { worst = d; at = i; } }
    bool ok = worst <= tol;
    if (!ok) fails++;
    printf("%s %-10s max rel err %.3g at %zu (got %g want %g)\n", ok ? "ok  " : "FAIL", name.c_str(), worst, at, got[at], want[at]);
}
unsigned grid(size_t n) { return (unsigned)std::max<size_t>(1, std::min<size_t>((n + 255) / 256, 1 << 20)); }
// cuBLAS column-major (strided batched) SGEMM semantics.
void sgemm_cm(bool ta, bool tb, int m, int n, int k, float alpha, const float* A, int lda, long long sa,
              const float* B, int ldb, long long sb, float beta, float* C, int ldc, long long sc, int batch) {
    for (int bt = 0; bt < batch; bt++) for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
        double acc = 0;
        for (int p = 0; p < k; p++) {
            float a = ta ? A[bt * sa + p + (long long)i * lda] : A[bt * sa + i + (long long)p * lda];
            float b = tb ? B[bt * sb + j + (long long)p * ldb] : B[bt * sb + p + (long long)j * ldb];
            acc += (double)a * b;
        }
        float* c = &C[bt * sc + i + (long long)j * ldc];
        *c = alpha * (float)acc + (beta == 0 ? 0.0f : beta * *c);
    }
}
struct RM { bool ta, tb; size_t m, n, k; float alpha; size_t lda, ldb; float beta; size_t ldc, batch, sa, sb, sc; };
RM single(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, float beta) {
    return RM{ta, tb, m, n, k, alpha, ta ? m : k, tb ? k : n, beta, n, 1, 0, 0, 0};
}
// Mirror of blas.rs's Cuda::sgemm.
void rm_gemm(RM g, const float* a, const float* b, float* c) {
    if (!g.m || !g.n || !g.batch) return;
    sgemm_cm(g.tb, g.ta, g.n, g.m, g.k, g.alpha, b, max<size_t>(g.ldb, 1), g.sb, a, max<size_t>(g.lda, 1), g.sa, g.beta, c, max<size_t>(g.ldc, 1), g.sc, g.batch);
}
int main(int argc, char** argv) {
    if (argc != 2) { fprintf(stderr, "usage: check DIR (the dumped tensors)\n"); return 2; }
    dir = argv[1];
    // ---- conv: mirror of conv.rs with chunk = 2 (n = 3: chunks of 2 and 1) ----
    int ic = 2, ih = 7, iw = 6, oc = 4, k = 3, st = 2, pad = 1, oh = 4, ow = 3, n = 3;
    size_t kl = ic * k * k, p = oh * ow, out_len = oc * p, in_len = ic * ih * iw, chunk = 2;
    V x = load("conv_x"), w = load("conv_w"), b = load("conv_b"), dy = load("conv_dy");
    V y(n * out_len), col(kl * chunk * p), dyt(oc * chunk * p), dw(w.size()), db(oc), dx(x.size()), dxd(x.size());
    long long len = n * out_len;
    launch(grid(len), 256, [&] { bias_rows_f32(y.data(), b.data(), len, oc, (long long)p); });
    for (size_t first = 0; first < (size_t)n; first += chunk) {
        int count = min(chunk, n - first);
        launch(grid(kl * count * p), 256, [&] { im2col_f32(col.data(), x.data(), first, count, ic, ih, iw, k, st, pad, oh, ow); });
        RM g = single(false, false, oc, p, kl, 1, 1); g.lda = kl; g.ldb = count * p; g.ldc = p; g.batch = count; g.sa = 0; g.sb = p; g.sc = out_len;
        rm_gemm(g, w.data(), col.data(), y.data() + first * out_len);
    }
    cmp("conv_y", y, "conv_y");
    launch(oc, 256, [&] { channel_sum_f32(db.data(), dy.data(), len, oc, (long long)p); });
    for (size_t first = 0; first < (size_t)n; first += chunk) {
        int count = min(chunk, n - first); size_t cp = count * p;
        launch(grid(kl * cp), 256, [&] { im2col_f32(col.data(), x.data(), first, count, ic, ih, iw, k, st, pad, oh, ow); });
        launch(grid(oc * cp), 256, [&] { nchw_to_cnhw_f32(dyt.data(), dy.data(), first, count, oc, (long long)p); });
        rm_gemm(single(false, true, oc, kl, cp, 1, first == 0 ? 0 : 1), dyt.data(), col.data(), dw.data());
        rm_gemm(single(true, false, kl, cp, oc, 1, 0), w.data(), dyt.data(), col.data());
        launch(grid(count * in_len), 256, [&] { col2im_f32(dx.data(), col.data(), first, count, ic, ih, iw, k, st, pad, oh, ow); });
    }
    cmp("conv_db", db, "conv_db"); cmp("conv_dw", dw, "conv_dw"); cmp("conv_dx", dx, "conv_dx");
    for (size_t first = 0; first < (size_t)n; first += chunk) {
        int count = min(chunk, n - first);
        RM g = single(true, false, kl, p, oc, 1, 0); g.lda = kl; g.ldb = p; g.ldc = count * p; g.batch = count; g.sa = 0; g.sb = out_len; g.sc = p;
        rm_gemm(g, w.data(), dy.data() + first * out_len, col.data());
        launch(grid(count * in_len), 256, [&] { col2im_f32(dxd.data(), col.data(), first, count, ic, ih, iw, k, st, pad, oh, ow); });
    }
    cmp("conv_dxd", dxd, "conv_dx");
    // ---- linear ----
    {
        V x = load("lin_x"), w = load("lin_w"), b = load("lin_b"), dy = load("lin_dy"), y(12), dx(15), dw(20), db(4);
        long long l = 12;
        launch(grid(12), 256, [&] { bias_rows_f32(y.data(), b.data(), l, 4, 1); });
        rm_gemm(single(false, true, 3, 4, 5, 1, 1), x.data(), w.data(), y.data());
        rm_gemm(single(false, false, 3, 5, 4, 1, 0), dy.data(), w.data(), dx.data());
        rm_gemm(single(true, false, 4, 5, 3, 1, 0), dy.data(), x.data(), dw.data());
        launch(4, 256, [&] { channel_sum_f32(db.data(), dy.data(), l, 4, 1); });
        cmp("lin_y", y, "lin_y"); cmp("lin_dx", dx, "lin_dx"); cmp("lin_dw", dw, "lin_dw"); cmp("lin_db", db, "lin_db");
    }
    // ---- pool ----
    {
        V x = load("pool_x"), dy = load("pool_dy"), y(dy.size()), dx(x.size());
        long long planes = 4;
        launch(grid(y.size()), 256, [&] { maxpool_fwd_f32(y.data(), x.data(), planes, 7, 6, 3, 2, 3, 2); });
        launch(grid(dx.size()), 256, [&] { maxpool_bwd_f32(dx.data(), x.data(), dy.data(), planes, 7, 6, 3, 2, 3, 2); });
        cmp("max_y", y, "max_y", 0); cmp("max_dx", dx, "max_dx", 0);
        launch(grid(y.size()), 256, [&] { avgpool_fwd_f32(y.data(), x.data(), planes, 7, 6, 3, 2, 3, 2); });
        launch(grid(dx.size()), 256, [&] { avgpool_bwd_f32(dx.data(), dy.data(), planes, 7, 6, 3, 2, 3, 2); });
        cmp("avg_y", y, "avg_y", 0); cmp("avg_dx", dx, "avg_dx", 0);
    }
    // ---- lcn ----
    {
        V x = load("lcn_x"), dy = load("lcn_dy"), win = load("lcn_win"), y(x.size()), dx(x.size()), scr(2 * 6 * 30);
        launch(2, 256, [&] { lcn_fwd_f32(y.data(), x.data(), win.data(), scr.data(), 3, 6, 5, 3, 1e-2f); });
        launch(2, 256, [&] { lcn_bwd_f32(dx.data(), x.data(), dy.data(), win.data(), scr.data(), 3, 6, 5, 3, 1e-2f); });
        cmp("lcn_y", y, "lcn_y"); cmp("lcn_dx", dx, "lcn_dx");
    }
    // ---- loss ----
    {
        V z = load("loss_z"), g(20); vector<double> per(10); unsigned char lab[5] = {0, 3, 1, 2, 2};
        for (int kind = 0; kind < 2; kind++) {
            launch(1, 128, [&] { if (kind == 0) loss_nll_f32(g.data(), per.data(), z.data(), lab, 5, 4, 1.0f / 5); else loss_hinge_f32(g.data(), per.data(), z.data(), lab, 5, 4, 1.0f / 5); });
            double tot = 0; int corr = 0; for (int i = 0; i < 5; i++) { tot += per[i]; corr += per[5 + i] > 0.5; }
            V out = {(float)(tot / 5), (float)corr};
            cmp(kind ? "hinge_g" : "nll_g", g, kind ? "hinge_g" : "nll_g"); cmp(kind ? "hinge_out" : "nll_out", out, kind ? "hinge_out" : "nll_out");
        }
    }
    // ---- dropout ----
    {
        V x = load("drop_x"), y(1000); long long l = 1000; float pp = 0.3f, scale = 1.0f / (1.0f - pp);
        launch(grid(1000), 256, [&] { dropout_fwd_f32(y.data(), x.data(), l, 0xDEADBEEF12345678ULL, pp, scale); });
        cmp("drop_y", y, "drop_y", 0);
    }
    // ---- shrink / scale / rows / columns ----
    {
        V x = load("sh_x"), dy = load("sh_dy"), th = {0.0f, 0.3f, 0.6f}, y(30), dx(30), dth(3), dxg(30), dg(3), rn(5), ra(5), d = dy;
        long long l = 30;
        launch(grid(30), 256, [&] { shrink_fwd_f32(y.data(), x.data(), l, th.data(), 3, 5, 0); });
        launch(grid(30), 256, [&] { shrink_bwd_f32(dx.data(), x.data(), dy.data(), l, th.data(), 3, 5, 0); });
        launch(3, 256, [&] { shrink_dtheta_f32(dth.data(), th.data(), x.data(), dy.data(), l, 3, 5); });
        launch(grid(30), 256, [&] { scale_fwd_f32(dxg.data(), th.data(), dy.data(), l, 3, 5); });
        launch(3, 256, [&] { channel_dot_f32(dg.data(), x.data(), dy.data(), l, 3, 5); });
        launch(5, 256, [&] { row_sq_norms_f32(rn.data(), x.data(), 6); });
        launch(5, 256, [&] { row_abs_sums_f32(ra.data(), x.data(), 6); });
        launch(6, 256, [&] { normalize_columns_f32(d.data(), 5, 6); });
        cmp("sh_y", y, "sh_y", 0); cmp("sh_dx", dx, "sh_dx", 0); cmp("sh_dth", dth, "sh_dth"); cmp("sc_dx", dxg, "sc_dx", 0);
        cmp("sc_dg", dg, "sc_dg"); cmp("rn", rn, "rn"); cmp("ra", ra, "ra"); cmp("ncol", d, "ncol");
    }
    // ---- gemm (mirror of blas.rs's gemm_tensors) ----
    {
        V a = load("gemm_a"), b = load("gemm_b"), c0 = load("gemm_c0");
        for (int ta = 0; ta < 2; ta++) for (int tb = 0; tb < 2; tb++) {
            V c = c0;
            rm_gemm(single(ta, tb, 3, 4, 5, 0.5f, 0.25f), a.data(), b.data(), c.data());
            string name = "gemm_" + to_string(ta) + to_string(tb);
            cmp(name, c, name);
        }
    }
    // ---- activations, optimizers, axpby, add_sign ----
    {
        V x = load("act_x"), dy = load("act_dy");
        long long l = x.size();
        const char* names[3] = {"relu", "tanh", "abs"};
        for (int kind = 0; kind < 3; kind++) {
            V y(l), dx(l);
            launch(grid(l), 256, [&] { act_fwd_f32(y.data(), x.data(), l, kind); });
            launch(grid(l), 256, [&] { act_bwd_f32(dx.data(), x.data(), y.data(), dy.data(), l, kind); });
            cmp(string(names[kind]) + "_y", y, string(names[kind]) + "_y", kind == 1 ? 1e-7 : 0);
            cmp(string(names[kind]) + "_dx", dx, string(names[kind]) + "_dx", kind == 1 ? 1e-6 : 0);
        }
        V w = x, v = dy;
        launch(grid(l), 256, [&] { sgd_update_f32(w.data(), v.data(), dy.data(), l, 0.1f, 0.9f, 0.01f); });
        cmp("sgd_w", w, "sgd_w", 0); cmp("sgd_v", v, "sgd_v", 0);
        // c1, c2 as ops.rs computes them (f32 powi(3) = repeated products).
        float b1 = 0.9f, b2 = 0.999f, c1 = 1.0f - b1 * b1 * b1, c2 = 1.0f - b2 * b2 * b2;
        V m = dy, va(l, 0.5f); w = x;
        launch(grid(l), 256, [&] { adam_update_f32(w.data(), m.data(), va.data(), dy.data(), l, 0.01f, b1, b2, 1e-8f, c1, c2); });
        cmp("adam_w", w, "adam_w", 1e-7); cmp("adam_m", m, "adam_m", 0); cmp("adam_v", va, "adam_v", 0);
        V y = dy;
        launch(grid(l), 256, [&] { axpby_f32(y.data(), x.data(), l, 0.5f, -2.0f); });
        cmp("axpby_y", y, "axpby_y", 0);
        y = dy;
        launch(grid(l), 256, [&] { add_sign_f32(y.data(), x.data(), l, 0.5f); });
        cmp("sign_y", y, "sign_y", 0);
    }
    // ---- past one block pass: LCN 19x17, channel sums of 450, rows of 700, columns of 600,
    // 200 samples (two loss blocks of 128, as ops.rs launches them), a scalar threshold ----
    {
        V x = load("big_lcn_x"), dy = load("big_lcn_dy"), win = load("big_lcn_win"), y(x.size()), dx(x.size()), scr(2 * 6 * 19 * 17);
        launch(2, 256, [&] { lcn_fwd_f32(y.data(), x.data(), win.data(), scr.data(), 2, 19, 17, 5, 1e-2f); });
        launch(2, 256, [&] { lcn_bwd_f32(dx.data(), x.data(), dy.data(), win.data(), scr.data(), 2, 19, 17, 5, 1e-2f); });
        cmp("big_lcn_y", y, "big_lcn_y"); cmp("big_lcn_dx", dx, "big_lcn_dx");
    }
    {
        V x = load("big_x"), dy = load("big_dy"), g = {0.5f, -2.0f}, dx(x.size()), dg(2), y(x.size());
        long long l = x.size();
        launch(grid(l), 256, [&] { scale_fwd_f32(dx.data(), g.data(), dy.data(), l, 2, 150); });
        launch(2, 256, [&] { channel_dot_f32(dg.data(), x.data(), dy.data(), l, 2, 150); });
        launch(grid(l), 256, [&] { shrink_fwd_f32(y.data(), x.data(), l, x.data(), 0, 1, 0.3f); });
        cmp("big_dx", dx, "big_dx", 0); cmp("big_dg", dg, "big_dg"); cmp("big_shrink", y, "big_shrink", 0);
        V xr = load("big_rows_x"), rn(xr.size() / 700), d = load("big_ncol_in");
        launch(rn.size(), 256, [&] { row_sq_norms_f32(rn.data(), xr.data(), 700); });
        launch(3, 256, [&] { normalize_columns_f32(d.data(), 600, 3); });
        cmp("big_rn", rn, "big_rn"); cmp("big_ncol", d, "big_ncol");
    }
    {
        V z = load("big_loss_z"), g(z.size()); vector<double> per(400); unsigned char lab[200];
        for (int i = 0; i < 200; i++) lab[i] = i * 7 % 10;
        launch((200 + 127) / 128, 128, [&] { loss_nll_f32(g.data(), per.data(), z.data(), lab, 200, 10, 1.0f / 200); });
        double tot = 0; int corr = 0; for (int i = 0; i < 200; i++) { tot += per[i]; corr += per[200 + i] > 0.5; }
        V out = {(float)(tot / 200), (float)corr};
        cmp("big_nll_g", g, "big_nll_g"); cmp("big_nll_out", out, "big_nll_out");
    }
    printf("%d failures\n", fails);
    return fails != 0;
}
