// Host emulation of the CUDA kernels, for machines without a GPU: each block's threads run
// as std::threads with a barrier for __syncthreads (blocks one after another), `__shared__`
// becomes `static`. Compiled with g++ -std=c++20 -ffp-contract=off by
// trainer/tests/cuda_kernels.rs, which checks the results against the CPU backend.
#include <cmath>
#include <math.h>
#include <cstring>
#include <barrier>
#include <thread>
#include <vector>
struct dim3 { unsigned x = 1, y = 1, z = 1; };
inline thread_local dim3 threadIdx;
inline dim3 blockIdx, blockDim, gridDim;
inline std::barrier<>* g_bar;
inline void __syncthreads() { g_bar->arrive_and_wait(); }
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
inline float __int_as_float(unsigned v) { float f; memcpy(&f, &v, 4); return f; }
template <class F> void launch(unsigned grid, unsigned block, F f) {
    gridDim.x = grid; blockDim.x = block;
    for (unsigned b = 0; b < grid; b++) {
        blockIdx.x = b;
        std::barrier<> bar(block);
        g_bar = &bar;
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < block; t++) ts.emplace_back([&, t] { threadIdx.x = t; f(); });
        for (auto& t : ts) t.join();
    }
}
