// CPU kernels of lqcdml: SU(N) Wilson gauge force, plaquette staple sum and Polyakov-line staples
// (with their vector-Jacobian products), the SU(2) and SU(3) stout updates (with theirs), staggered and Wilson hopping terms, the U(1)
// masked stout stack of field-transformed HMC and its vector-Jacobian product, and batched
// products of 2 x 2 / 3 x 3 complex matrices (the gauge-covariant networks' matmuls).
//
// Layouts (docs/architecture.md#tensor-layouts): links [B, d, V, N, N] complex, fermions [B, V, N] (staggered) or
// [B, V, 4, N] (Wilson), complex interleaved (re, im), sites in lexicographic order of
// (x_0, ..., x_{d-1}). The geometry comes from Python as neighbour tables
// fwd[mu][x] = x + mu, bwd[mu][x] = x - mu (periodic) and per-site real coefficients
// (staggered phases, boundary signs), so the kernels know nothing of the lattice shape.
//
// Vectorisation: W consecutive sites are one "lane block". A block's matrices and
// vectors are gathered into structure-of-arrays registers (T re[e][W], im[e][W]); every
// arithmetic loop runs over the W lanes, which the compiler maps onto SIMD registers.
// Blocks run in parallel through ATen's thread pool (torch.set_num_threads applies).
// Plain real arithmetic throughout: no std::complex (its NaN-checking multiply is slow).

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace {

template <typename T>
constexpr int lanes() { return 64 / sizeof(T); }  // one 512-bit register of T

#ifdef __AVX512F__
constexpr int kVectorBytes = 64;
#else
constexpr int kVectorBytes = 32;  // AVX2 (the portable x86-64-v3 build) and narrower
#endif

template <typename T, int E, int W>
struct Block {  // E complex numbers per lane, W lanes
  alignas(64) T re[E][W];
  alignas(64) T im[E][W];
};

template <typename T, int E, int W>
inline void zero(Block<T, E, W>& a) {
  for (int e = 0; e < E; ++e)
#pragma omp simd
    for (int w = 0; w < W; ++w) a.re[e][w] = a.im[e][w] = T(0);
}

// gather E complex numbers per lane from base + idx[w] * E (complex units)
template <typename T, int E, int W>
inline void gather(const T* base, const int64_t* idx, Block<T, E, W>& a) {
  for (int w = 0; w < W; ++w) {
    const T* p = base + 2 * E * idx[w];
    for (int e = 0; e < E; ++e) {
      a.re[e][w] = p[2 * e];
      a.im[e][w] = p[2 * e + 1];
    }
  }
}

template <typename T, int E, int W>
inline void scatter(T* base, const int64_t* idx, int n_valid, const Block<T, E, W>& a) {
  for (int w = 0; w < n_valid; ++w) {
    T* p = base + 2 * E * idx[w];
    for (int e = 0; e < E; ++e) {
      p[2 * e] = a.re[e][w];
      p[2 * e + 1] = a.im[e][w];
    }
  }
}

// Read access to one lane block's matrix, wherever it lives: re(e)[w], im(e)[w].
template <typename T, int E, int W>
struct InBlock {  // a Block
  const Block<T, E, W>& b;
  const T* re(int e) const { return b.re[e]; }
  const T* im(int e) const { return b.im[e]; }
};

template <typename T>
struct InRows {  // structure-of-arrays rows: component c (2 e re, 2 e + 1 im) at p[c * ld + w]
  const T* p;
  int64_t ld;
  const T* re(int e) const { return p + (2 * e) * ld; }
  const T* im(int e) const { return p + (2 * e + 1) * ld; }
};

// (re, im)[w] += op(A)_ik op(B)_kj over the W lanes; op is the adjoint where DA / DB
template <int N, bool DA, bool DB, typename T, int W, typename A, typename B>
inline void mac(const A& a, const B& b, int i, int k, int j, T* __restrict__ re, T* __restrict__ im) {
  const int ia = DA ? k * N + i : i * N + k;
  const int ib = DB ? j * N + k : k * N + j;
  const T sa = DA ? T(-1) : T(1);
  const T sb = DB ? T(-1) : T(1);
  const T* __restrict__ a_re = a.re(ia);
  const T* __restrict__ a_im = a.im(ia);
  const T* __restrict__ b_re = b.re(ib);
  const T* __restrict__ b_im = b.im(ib);
#pragma omp simd
  for (int w = 0; w < W; ++w) {
    const T ar = a_re[w], ai = sa * a_im[w];
    const T br = b_re[w], bi = sb * b_im[w];
    re[w] += ar * br - ai * bi;
    im[w] += ar * bi + ai * br;
  }
}

// C (+)= op(A) op(B) for N x N matrices; A and B are read in place (InBlock, InRows), so
// operands in structure-of-arrays rows need no copy into a Block. Every C_ij sums k = 0..N-1
// in order; where a lane array is one vector register, a whole row of C is accumulated at
// once (each A_ik loaded once), otherwise one element at a time (fewer live registers).
template <int N, bool DA, bool DB, bool ACC, typename T, int W, typename A, typename B>
inline void matmul_in(const A& a, const B& b, Block<T, N * N, W>& c) {
  constexpr int R = W * sizeof(T) <= kVectorBytes ? N : 1;  // elements of a row accumulated together
  for (int i = 0; i < N; ++i)
    for (int j0 = 0; j0 < N; j0 += R) {
      alignas(64) T re[R][W], im[R][W];
      for (int r = 0; r < R; ++r)
#pragma omp simd
        for (int w = 0; w < W; ++w) {
          re[r][w] = ACC ? c.re[i * N + j0 + r][w] : T(0);
          im[r][w] = ACC ? c.im[i * N + j0 + r][w] : T(0);
        }
      for (int k = 0; k < N; ++k)
        for (int r = 0; r < R; ++r) mac<N, DA, DB, T, W>(a, b, i, k, j0 + r, re[r], im[r]);
      for (int r = 0; r < R; ++r)
#pragma omp simd
        for (int w = 0; w < W; ++w) { c.re[i * N + j0 + r][w] = re[r][w]; c.im[i * N + j0 + r][w] = im[r][w]; }
    }
}

template <int N, bool DA, bool DB, bool ACC, typename T, int W>
inline void matmul(const Block<T, N * N, W>& a, const Block<T, N * N, W>& b, Block<T, N * N, W>& c) {
  matmul_in<N, DA, DB, ACC, T, W>(InBlock<T, N * N, W>{a}, InBlock<T, N * N, W>{b}, c);
}

// y = c TA(x), TA(X) = (X - X^dag) / 2i - tr(...) / N:
// Y_ij = (Im X_ij + Im X_ji) / 2 + i (Re X_ji - Re X_ij) / 2, the trace removed from the diagonal
template <int N, typename T, int W>
inline void traceless_hermitian(const Block<T, N * N, W>& x, T c, Block<T, N * N, W>& y) {
  alignas(64) T trace[W];
#pragma omp simd
  for (int w = 0; w < W; ++w) trace[w] = T(0);
  for (int i = 0; i < N; ++i)
#pragma omp simd
    for (int w = 0; w < W; ++w) trace[w] += x.im[i * N + i][w];
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const int ij = i * N + j, ji = j * N + i;
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        T re = T(0.5) * (x.im[ij][w] + x.im[ji][w]);
        if (i == j) re -= trace[w] / T(N);
        y.re[ij][w] = c * re;
        y.im[ij][w] = c * T(0.5) * (x.re[ji][w] - x.re[ij][w]);
      }
    }
}

// y (+)= coef[w] * op(U) v for colour vectors; op the adjoint where DAG
template <bool DAG, typename T, int N, int W>
inline void matvec_acc(const Block<T, N * N, W>& u, const T* vre, const T* vim, const T* coef,
                       T* yre, T* yim) {
  // vre / vim / yre / yim: [N][W] arrays
  for (int i = 0; i < N; ++i) {
    alignas(64) T re[W], im[W];
#pragma omp simd
    for (int w = 0; w < W; ++w) { re[w] = T(0); im[w] = T(0); }
    for (int k = 0; k < N; ++k) {
      const int iu = DAG ? k * N + i : i * N + k;
      const T s = DAG ? T(-1) : T(1);
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T ur = u.re[iu][w], ui = s * u.im[iu][w];
        re[w] += ur * vre[k * W + w] - ui * vim[k * W + w];
        im[w] += ur * vim[k * W + w] + ui * vre[k * W + w];
      }
    }
#pragma omp simd
    for (int w = 0; w < W; ++w) {
      yre[i * W + w] += coef[w] * re[w];
      yim[i * W + w] += coef[w] * im[w];
    }
  }
}

// the lane block starting at flat site s0 of one configuration: site indices, valid lanes
template <int W>
inline int block_sites(int64_t s0, int64_t volume, int64_t* site) {
  const int n = static_cast<int>(std::min<int64_t>(W, volume - s0));
  for (int w = 0; w < W; ++w) site[w] = s0 + (w < n ? w : 0);
  return n;
}

// ---------------------------------------------------------------------------------
// The plaquette staple sum of direction mu on one lane block of one configuration:
// acc = A_mu(x) = sum_{nu != mu} U_nu(x+mu) U_mu(x+nu)^dag U_nu(x)^dag
//                              + U_nu(x+mu-nu)^dag U_mu(x-nu)^dag U_nu(x-nu),
// so that U_mu(x) A_mu(x) is the sum of the plaquettes through the link (nn.gauge_loops'
// convention). cfg: the configuration's links [d, V, N, N]; a, b, t: scratch blocks.
template <typename T, int N, int W>
inline void plaquette_staple_block(const T* cfg, const int64_t* fwd, const int64_t* bwd, int64_t dim,
                                   int64_t volume, int64_t mu, const int64_t* site, Block<T, N * N, W>& acc,
                                   Block<T, N * N, W>& a, Block<T, N * N, W>& b, Block<T, N * N, W>& t) {
  constexpr int E = N * N;
  int64_t idx[W], idx2[W];
  auto field = [&](int64_t nu) { return cfg + 2 * E * nu * volume; };
  zero(acc);
  for (int64_t nu = 0; nu < dim; ++nu) {
    if (nu == mu) continue;
    // upper staple U_nu(x+mu) U_mu(x+nu)^dag U_nu(x)^dag
    for (int w = 0; w < W; ++w) idx[w] = fwd[mu * volume + site[w]];
    gather(field(nu), idx, a);
    for (int w = 0; w < W; ++w) idx[w] = fwd[nu * volume + site[w]];
    gather(field(mu), idx, b);
    matmul<N, false, true, false>(a, b, t);
    gather(field(nu), site, a);
    matmul<N, false, true, true>(t, a, acc);
    // lower staple U_nu(x+mu-nu)^dag U_mu(x-nu)^dag U_nu(x-nu) = (U_mu(x-nu) U_nu(x-nu+mu))^dag U_nu(x-nu)
    for (int w = 0; w < W; ++w) {
      idx[w] = bwd[nu * volume + site[w]];
      idx2[w] = fwd[mu * volume + idx[w]];
    }
    gather(field(mu), idx, a);
    gather(field(nu), idx2, b);
    matmul<N, false, false, false>(a, b, t);
    gather(field(nu), idx, a);
    matmul<N, true, false, true>(t, a, acc);
  }
}

// Run fn(b, mu, site, n_valid) for every lane block of links (configuration b, direction mu,
// W sites from site[]) in parallel: each job writes the links of its own block only.
template <int W, typename F>
void for_each_link_block(int64_t batch, int64_t dim, int64_t volume, F fn) {
  const int64_t blocks = (volume + W - 1) / W;
  at::parallel_for(0, batch * dim * blocks, 1, [&](int64_t begin, int64_t end) {
    int64_t site[W];
    for (int64_t job = begin; job < end; ++job) {
      const int n_valid = block_sites<W>((job % blocks) * W, volume, site);
      fn(job / (dim * blocks), (job / blocks) % dim, site, n_valid);
    }
  });
}

// Wilson gauge force: beta / (2N) TA(U_mu(x) A_mu(x)), A the staple sum,
// TA(X) = (X - X^dag) / 2i - tr(...) / N
template <typename T, int N>
void gauge_force_impl(const T* links, T* out, const int64_t* fwd, const int64_t* bwd, int64_t batch,
                      int64_t dim, int64_t volume, double coef) {
  constexpr int W = lanes<T>();
  constexpr int E = N * N;
  for_each_link_block<W>(batch, dim, volume, [&](int64_t bidx, int64_t mu, const int64_t* site, int n_valid) {
    Block<T, E, W> u, a, b, t, acc;
    const T* cfg = links + 2 * E * bidx * dim * volume;
    plaquette_staple_block<T, N, W>(cfg, fwd, bwd, dim, volume, mu, site, acc, a, b, t);
    gather(cfg + 2 * E * mu * volume, site, u);
    matmul<N, false, false, false>(u, acc, t);  // X = U A
    traceless_hermitian<N>(t, static_cast<T>(coef), a);
    scatter(out + 2 * E * (bidx * dim + mu) * volume, site, n_valid, a);
  });
}

// The staple sum A_mu(x) itself (the plaquette term of a stout layer)
template <typename T, int N>
void plaquette_staple_impl(const T* links, T* out, const int64_t* fwd, const int64_t* bwd, int64_t batch,
                           int64_t dim, int64_t volume) {
  constexpr int W = lanes<T>();
  constexpr int E = N * N;
  for_each_link_block<W>(batch, dim, volume, [&](int64_t bidx, int64_t mu, const int64_t* site, int n_valid) {
    Block<T, E, W> a, b, t, acc;
    plaquette_staple_block<T, N, W>(links + 2 * E * bidx * dim * volume, fwd, bwd, dim, volume, mu, site, acc, a, b,
                                    t);
    scatter(out + 2 * E * (bidx * dim + mu) * volume, site, n_valid, acc);
  });
}

// The vector-Jacobian product of the staple sum: with cotangent G_mu(x) of A_mu(x) (torch's
// convention: for C = X Y, grad X = g Y^dag, grad Y = X^dag g), the gradient of U_rho(y)
// gathered from every staple it enters, sigma != rho (ym = y - sigma, yp = y + sigma,
// yr = y + rho, ymr = y - sigma + rho):
//   as U_nu(x+mu) of an upper staple        G_s(ym) U_r(ym) U_s(ymr)
//   as U_nu(x) of an upper staple           G_s(y)^dag U_r(yp) U_s(yr)^dag
//   as U_nu(x+mu-nu) of a lower staple      U_s(ym)^dag U_r(ym) G_s(ymr)^dag
//   as U_nu(x-nu) of a lower staple         U_s(y) U_r(yp) G_s(yr)
//   as U_mu(x+nu) of an upper staple        U_s(ym)^dag G_r(ym)^dag U_s(ymr)
//   as U_mu(x-nu) of a lower staple         U_s(y) G_r(yp)^dag U_s(yr)^dag
// Each output link is written by one job: no races, no atomics. Terms that share their last
// factor are summed before it: 10 products and 12 gathers per sigma.
template <typename T, int N>
void plaquette_staple_vjp_impl(const T* links, const T* grad, T* out, const int64_t* fwd, const int64_t* bwd,
                               int64_t batch, int64_t dim, int64_t volume) {
  constexpr int W = lanes<T>();
  constexpr int E = N * N;
  for_each_link_block<W>(batch, dim, volume, [&](int64_t bidx, int64_t rho, const int64_t* y, int n_valid) {
    Block<T, E, W> a, b, c, t, acc;
    int64_t ym[W], yp[W], yr[W], ymr[W];
    const T* cfg = links + 2 * E * bidx * dim * volume;
    const T* cot = grad + 2 * E * bidx * dim * volume;
    auto u = [&](int64_t nu) { return cfg + 2 * E * nu * volume; };
    auto g = [&](int64_t nu) { return cot + 2 * E * nu * volume; };
    zero(acc);
    for (int64_t s = 0; s < dim; ++s) {
      if (s == rho) continue;
      for (int w = 0; w < W; ++w) {
        ym[w] = bwd[s * volume + y[w]];
        yp[w] = fwd[s * volume + y[w]];
        yr[w] = fwd[rho * volume + y[w]];
        ymr[w] = fwd[rho * volume + ym[w]];
      }
      // the two roles that end in U_s(ymr), then the two that end in U_s(yr)^dag
      gather(g(s), ym, a);
      gather(u(rho), ym, b);
      matmul<N, false, false, false>(a, b, t);  // G_s(ym) U_r(ym)
      gather(u(s), ym, a);
      gather(g(rho), ym, c);
      matmul<N, true, true, true>(a, c, t);  // + U_s(ym)^dag G_r(ym)^dag
      gather(u(s), ymr, c);
      matmul<N, false, false, true>(t, c, acc);
      matmul<N, true, false, false>(a, b, t);  // U_s(ym)^dag U_r(ym) G_s(ymr)^dag
      gather(g(s), ymr, c);
      matmul<N, false, true, true>(t, c, acc);
      gather(g(s), y, a);
      gather(u(rho), yp, b);
      matmul<N, true, false, false>(a, b, t);  // G_s(y)^dag U_r(yp)
      gather(u(s), y, a);
      gather(g(rho), yp, c);
      matmul<N, false, true, true>(a, c, t);  // + U_s(y) G_r(yp)^dag
      gather(u(s), yr, c);
      matmul<N, false, true, true>(t, c, acc);
      matmul<N, false, false, false>(a, b, t);  // U_s(y) U_r(yp) G_s(yr)
      gather(g(s), yr, c);
      matmul<N, false, false, true>(t, c, acc);
    }
    scatter(out + 2 * E * (bidx * dim + rho) * volume, y, n_valid, acc);
  });
}

// ---------------------------------------------------------------------------------
// Polyakov-line staples (nn.gauge_loops.polyakov_staples): along direction mu, with extent L,
//   S_mu(x) = U_mu(x+mu) U_mu(x+2mu) ... U_mu(x+(L-1)mu)   (the identity where L = 1),
// so that U_mu(x) S_mu(x) is the Polyakov line through x. L is the cycle length of fwd[mu]
// (the kernels know no lattice shape).

template <typename T, int E, int W>
inline void set_identity(Block<T, E, W>& a, int n) {
  zero(a);
  for (int i = 0; i < n; ++i)
#pragma omp simd
    for (int w = 0; w < W; ++w) a.re[i * n + i][w] = T(1);
}

template <typename T, int E, int W>
inline void add_to(const Block<T, E, W>& a, Block<T, E, W>& acc) {
  for (int e = 0; e < E; ++e)
#pragma omp simd
    for (int w = 0; w < W; ++w) { acc.re[e][w] += a.re[e][w]; acc.im[e][w] += a.im[e][w]; }
}

template <typename T, int N>
void polyakov_staple_impl(const T* links, T* out, const int64_t* fwd, const int64_t* extent, int64_t batch,
                          int64_t dim, int64_t volume) {
  constexpr int W = lanes<T>();
  constexpr int E = N * N;
  for_each_link_block<W>(batch, dim, volume, [&](int64_t bidx, int64_t mu, const int64_t* site, int n_valid) {
    Block<T, E, W> p, q, a;
    Block<T, E, W>*acc = &p, *tmp = &q;
    const T* u = links + 2 * E * (bidx * dim + mu) * volume;
    const int64_t* next = fwd + mu * volume;
    int64_t idx[W];
    if (extent[mu] == 1) {
      set_identity(p, N);
    } else {
      for (int w = 0; w < W; ++w) idx[w] = next[site[w]];
      gather(u, idx, p);
      for (int64_t s = 2; s < extent[mu]; ++s) {
        for (int w = 0; w < W; ++w) idx[w] = next[idx[w]];
        gather(u, idx, a);
        matmul<N, false, false, false>(*acc, a, *tmp);
        std::swap(acc, tmp);
      }
    }
    scatter(out + 2 * E * (bidx * dim + mu) * volume, site, n_valid, *acc);
  });
}

// The vector-Jacobian product: U_mu(y) is factor s (s = 1 .. L-1) of S_mu(y - s mu), between
// A = U(y-(s-1)mu) ... U(y-mu) and C = U(y+mu) ... U(y+(L-1-s)mu); torch's convention gives
//   grad U_mu(y) = sum_s A^dag G_mu(y - s mu) C^dag.
// Per block: the products F_r = U(y+mu) ... U(y+r mu) once (r < L-1), then s upwards with
// A_s = U(y - s mu) A_{s-1} grown from the site whose cotangent the term reads: 4 L products.
template <typename T, int N>
void polyakov_staple_vjp_impl(const T* links, const T* grad, T* out, const int64_t* fwd, const int64_t* bwd,
                              const int64_t* extent, int64_t batch, int64_t dim, int64_t volume) {
  constexpr int W = lanes<T>();
  constexpr int E = N * N;
  for_each_link_block<W>(batch, dim, volume, [&](int64_t bidx, int64_t mu, const int64_t* site, int n_valid) {
    const int64_t length = extent[mu];
    const int64_t offset = 2 * E * (bidx * dim + mu) * volume;
    Block<T, E, W> acc, g, t, a, b;
    zero(acc);
    if (length > 1) {
      const T* u = links + offset;
      const T* cot = grad + offset;
      const int64_t* next = fwd + mu * volume;
      const int64_t* prev = bwd + mu * volume;
      // f[r] = F_r, r >= 1: one buffer per thread, grown to the longest line, not one per job
      thread_local std::vector<Block<T, E, W>> f;
      if (f.size() < static_cast<size_t>(length - 1)) f.resize(static_cast<size_t>(length - 1));
      int64_t idx[W];
      for (int w = 0; w < W; ++w) idx[w] = site[w];
      for (int64_t r = 1; r < length - 1; ++r) {
        for (int w = 0; w < W; ++w) idx[w] = next[idx[w]];
        if (r == 1) {
          gather(u, idx, f[1]);
        } else {
          gather(u, idx, a);
          matmul<N, false, false, false>(f[r - 1], a, f[r]);
        }
      }
      Block<T, E, W>*left = &a, *spare = &b;  // A_{s-1}; the identity at s = 1
      for (int w = 0; w < W; ++w) idx[w] = site[w];
      for (int64_t s = 1; s < length; ++s) {
        for (int w = 0; w < W; ++w) idx[w] = prev[idx[w]];  // y - s mu
        gather(cot, idx, g);
        const int64_t r = length - 1 - s;
        if (s == 1 && r == 0) {
          add_to(g, acc);
        } else if (s == 1) {
          matmul<N, false, true, true>(g, f[r], acc);
        } else if (r == 0) {
          matmul<N, true, false, true>(*left, g, acc);
        } else {
          matmul<N, true, false, false>(*left, g, t);
          matmul<N, false, true, true>(t, f[r], acc);
        }
        if (s + 1 < length) {  // A_s = U(y - s mu) A_{s-1}
          gather(u, idx, t);
          if (s == 1) {
            *left = t;
          } else {
            matmul<N, false, false, false>(t, *left, *spare);
            std::swap(left, spare);
          }
        }
      }
    }
    scatter(out + offset, site, n_valid, acc);
  });
}


// The same force with the lattice taken row by row along the last direction, for extents
// L_{d-1} that are multiples of the lane count: the links are first transposed into
// structure-of-arrays rows with one halo site at each end,
//   soa[b][nu][row][component][1 + z],  component = 2 e (re) or 2 e + 1 (im),
// so every neighbour block is a plain (unaligned) vector load: x +- mu for mu < d - 1 is
// another row (tables row_fwd / row_bwd of the outer d - 1 directions), for mu = d - 1
// the same row shifted by one site into the halo.
template <typename T, int N>
void gauge_force_rows_impl(const T* links, T* out, T* soa, const int64_t* row_fwd, const int64_t* row_bwd,
                           int64_t batch, int64_t dim, int64_t rows, int64_t length, double coef) {
  constexpr int W = 8;
  constexpr int E = N * N;
  using M = Block<T, E, W>;
  const int64_t lp = length + 2;
  const int64_t volume = rows * length;
  const int64_t row_size = 2 * E * lp;
  at::parallel_for(0, batch * dim * rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t job = begin; job < end; ++job) {  // job = (b * dim + nu) * rows + row
      const T* src = links + 2 * E * (job * length);
      T* dst = soa + job * row_size;
      for (int64_t z = 0; z < length; ++z)
        for (int c = 0; c < 2 * E; ++c) dst[c * lp + 1 + z] = src[2 * E * z + c];
      for (int c = 0; c < 2 * E; ++c) {
        dst[c * lp] = dst[c * lp + length];
        dst[c * lp + length + 1] = dst[c * lp + 1];
      }
    }
  });
  const int64_t blocks = length / W;
  const int64_t last = dim - 1;
  at::parallel_for(0, batch * dim * rows * blocks, 1, [&](int64_t begin, int64_t end) {
    M a, t, acc;
    int64_t site[W];
    for (int64_t job = begin; job < end; ++job) {
      const int64_t z0 = (job % blocks) * W;
      const int64_t row = (job / blocks) % rows;
      const int64_t mu = (job / (blocks * rows)) % dim;
      const int64_t bidx = job / (blocks * rows * dim);
      const T* cfg = soa + bidx * dim * rows * row_size;
      // (row, dz) of x + sign * nu_hat from (row, dz)
      auto step = [&](int64_t r, int64_t dz, int64_t nu, int sign, int64_t& r_out, int64_t& dz_out) {
        if (nu == last) { r_out = r; dz_out = dz + sign; }
        else { r_out = (sign > 0 ? row_fwd : row_bwd)[nu * rows + r]; dz_out = dz; }
      };
      auto at = [&](int64_t nu, int64_t r, int64_t dz) {  // the lane block of U_nu at (r, z0 + dz), in place
        return InRows<T>{cfg + (nu * rows + r) * row_size + 1 + z0 + dz, lp};
      };
      zero(acc);
      for (int64_t nu = 0; nu < dim; ++nu) {
        if (nu == mu) continue;
        int64_t r1, d1, r2, d2, r3, d3;
        step(row, 0, mu, +1, r1, d1);  // x + mu
        step(row, 0, nu, +1, r2, d2);  // x + nu
        matmul_in<N, false, true, false, T, W>(at(nu, r1, d1), at(mu, r2, d2), t);
        matmul_in<N, false, true, true, T, W>(InBlock<T, E, W>{t}, at(nu, row, 0), acc);
        step(row, 0, nu, -1, r2, d2);  // x - nu
        step(r2, d2, mu, +1, r3, d3);  // x - nu + mu
        matmul_in<N, false, false, false, T, W>(at(mu, r2, d2), at(nu, r3, d3), t);
        matmul_in<N, true, false, true, T, W>(InBlock<T, E, W>{t}, at(nu, r2, d2), acc);
      }
      matmul_in<N, false, false, false, T, W>(at(mu, row, 0), InBlock<T, E, W>{acc}, t);
      traceless_hermitian<N>(t, static_cast<T>(coef), a);
      for (int w = 0; w < W; ++w) site[w] = row * length + z0 + w;
      scatter(out + 2 * E * (bidx * dim + mu) * volume, site, W, a);
    }
  });
}

// ---------------------------------------------------------------------------------
// staggered hopping term: out(x) = sum_mu [cf_mu(x) U_mu(x) psi(x+mu) + cb_mu(x) U_mu(x-mu)^dag psi(x-mu)]
// with cf = eta phase_fwd / 2, cb = -eta phase_bwd / 2 supplied by the caller
template <typename T, int N>
void staggered_hop_impl(const T* links, const T* psi, T* out, const int64_t* fwd, const int64_t* bwd,
                        const T* cf, const T* cb, int64_t batch, int64_t dim, int64_t volume) {
  constexpr int W = lanes<T>();
  using M = Block<T, N * N, W>;
  using Vc = Block<T, N, W>;
  const int64_t blocks = (volume + W - 1) / W;
  at::parallel_for(0, batch * blocks, 1, [&](int64_t begin, int64_t end) {
    M u;
    Vc v, y;
    int64_t site[W], idx[W];
    alignas(64) T coef[W];
    for (int64_t job = begin; job < end; ++job) {
      const int64_t bidx = job / blocks;
      const int n_valid = block_sites<W>((job % blocks) * W, volume, site);
      const T* cfg = links + 2 * N * N * bidx * dim * volume;
      const T* field = psi + 2 * N * bidx * volume;
      zero(y);
      for (int64_t mu = 0; mu < dim; ++mu) {
        const T* umu = cfg + 2 * N * N * mu * volume;
        for (int w = 0; w < W; ++w) { idx[w] = fwd[mu * volume + site[w]]; coef[w] = cf[mu * volume + site[w]]; }
        gather(umu, site, u);
        gather(field, idx, v);
        matvec_acc<false, T, N, W>(u, &v.re[0][0], &v.im[0][0], coef, &y.re[0][0], &y.im[0][0]);
        for (int w = 0; w < W; ++w) { idx[w] = bwd[mu * volume + site[w]]; coef[w] = cb[mu * volume + site[w]]; }
        gather(umu, idx, u);
        gather(field, idx, v);
        matvec_acc<true, T, N, W>(u, &v.re[0][0], &v.im[0][0], coef, &y.re[0][0], &y.im[0][0]);
      }
      scatter(out + 2 * N * bidx * volume, site, n_valid, y);
    }
  });
}

// ---------------------------------------------------------------------------------
// Wilson hopping term with spin projection, chiral basis of wilson_fermion.py:
// gamma_mu = [[0, A_mu], [A_mu^dag, 0]], A_0 = 1, A_k = -i sigma_k. With s = +1 (forward,
// 1 - gamma) or -1 (backward, 1 + gamma): (1 - s gamma) psi = [h; -s A^dag h], h = psi_u - s A psi_l,
// and the colour matrix acts on the two components of h only.
//
// out(x) = sum_mu [pf_mu(x) (1 - g_mu) U_mu(x) psi(x+mu) + pb_mu(x) (1 + g_mu) U_mu(x-mu)^dag psi(x-mu)]

// (r0, r1) = A_mu (l0, l1) (ADJ: A_mu^dag) for lane arrays of N colours; complex units re/im
template <typename T, int N, int W>
inline void apply_a(int mu, bool adj, const T* l0r, const T* l0i, const T* l1r, const T* l1i,
                    T* r0r, T* r0i, T* r1r, T* r1i) {
  constexpr int K = N * W;
  // A_0 = 1; A_1 = [[0,-i],[-i,0]]; A_2 = [[0,-1],[1,0]]; A_3 = diag(-i, i); adjoint: conj transpose
  const T s = adj ? T(-1) : T(1);  // sign of i in A_1, A_3 and of the transpose in A_2
#pragma omp simd
  for (int k = 0; k < K; ++k) {
    switch (mu) {
      case 0: r0r[k] = l0r[k]; r0i[k] = l0i[k]; r1r[k] = l1r[k]; r1i[k] = l1i[k]; break;
      // -i s z: (re, im) -> (s im, -s re)
      case 1: r0r[k] = s * l1i[k]; r0i[k] = -s * l1r[k]; r1r[k] = s * l0i[k]; r1i[k] = -s * l0r[k]; break;
      case 2: r0r[k] = -s * l1r[k]; r0i[k] = -s * l1i[k]; r1r[k] = s * l0r[k]; r1i[k] = s * l0i[k]; break;
      default: r0r[k] = s * l0i[k]; r0i[k] = -s * l0r[k]; r1r[k] = -s * l1i[k]; r1i[k] = s * l1r[k]; break;
    }
  }
}

template <typename T, int N>
void wilson_hop_impl(const T* links, const T* psi, T* out, const int64_t* fwd, const int64_t* bwd,
                     const T* pf, const T* pb, int64_t batch, int64_t volume) {
  constexpr int W = lanes<T>();
  constexpr int dim = 4;
  constexpr int K = N * W;
  using M = Block<T, N * N, W>;
  using Sp = Block<T, 4 * N, W>;  // spinor: spin-major, then colour
  const int64_t blocks = (volume + W - 1) / W;
  at::parallel_for(0, batch * blocks, 1, [&](int64_t begin, int64_t end) {
    M u;
    Sp v, y;
    int64_t site[W], idx[W];
    alignas(64) T coef[W], one[W];
    alignas(64) T hr[2][K], hi[2][K], gr[2][K], gi[2][K], ar[2][K], ai[2][K];
    for (int w = 0; w < W; ++w) one[w] = T(1);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t bidx = job / blocks;
      const int n_valid = block_sites<W>((job % blocks) * W, volume, site);
      const T* cfg = links + 2 * N * N * bidx * dim * volume;
      const T* field = psi + 2 * 4 * N * bidx * volume;
      zero(y);
      for (int mu = 0; mu < dim; ++mu) {
        const T* umu = cfg + 2 * N * N * mu * volume;
        for (int dir = 0; dir < 2; ++dir) {  // 0: forward (s = +1), 1: backward (s = -1)
          const T s = dir == 0 ? T(1) : T(-1);
          const int64_t* nb = dir == 0 ? fwd : bwd;
          const T* ph = dir == 0 ? pf : pb;
          for (int w = 0; w < W; ++w) { idx[w] = nb[mu * volume + site[w]]; coef[w] = ph[mu * volume + site[w]]; }
          gather(field, idx, v);
          gather(umu, dir == 0 ? site : idx, u);
          // h = psi_u - s A psi_l (times the boundary phase)
          apply_a<T, N, W>(mu, false, &v.re[2 * N][0], &v.im[2 * N][0], &v.re[3 * N][0], &v.im[3 * N][0],
                           ar[0], ai[0], ar[1], ai[1]);
          for (int c = 0; c < 2; ++c)
            for (int k = 0; k < K; ++k) {
              const int w = k % W;
              hr[c][k] = coef[w] * ((&v.re[c * N][0])[k] - s * ar[c][k]);
              hi[c][k] = coef[w] * ((&v.im[c * N][0])[k] - s * ai[c][k]);
            }
          // g = op(U) h, colour-wise on both components
          for (int c = 0; c < 2; ++c) {
            for (int k = 0; k < K; ++k) { gr[c][k] = T(0); gi[c][k] = T(0); }
            if (dir == 0)
              matvec_acc<false, T, N, W>(u, hr[c], hi[c], one, gr[c], gi[c]);
            else
              matvec_acc<true, T, N, W>(u, hr[c], hi[c], one, gr[c], gi[c]);
          }
          // upper += g, lower += -s A^dag g
          apply_a<T, N, W>(mu, true, gr[0], gi[0], gr[1], gi[1], ar[0], ai[0], ar[1], ai[1]);
          for (int c = 0; c < 2; ++c) {
            T* ur = &y.re[c * N][0];
            T* ui = &y.im[c * N][0];
            T* lr = &y.re[(2 + c) * N][0];
            T* li = &y.im[(2 + c) * N][0];
#pragma omp simd
            for (int k = 0; k < K; ++k) {
              ur[k] += gr[c][k];
              ui[k] += gi[c][k];
              lr[k] -= s * ar[c][k];
              li[k] -= s * ai[c][k];
            }
          }
        }
      }
      scatter(out + 2 * 4 * N * bidx * volume, site, n_valid, y);
    }
  });
}


// ---------------------------------------------------------------------------------
// SU(3) molecular-dynamics update U' = exp(i eps P) U, P hermitian traceless, the
// exponential by the Cayley-Hamilton series of groups._expi_su3: Q = eps P,
// Q^3 = c1 Q + c0 (c1 = tr Q^2 / 2, c0 = det Q), powers Q^k = a + b Q + c Q^2 with
// (a, b, c) -> (c c0, a + c c1, b); the series is cut where the next term is below
// 1e-17 r^k / k!, r = |Q|_F. Where r > 4 (the alternating series loses digits) the
// argument is halved until r <= 4 and the result squared back. A NaN or infinite momentum
// gives a NaN update (a rejected trajectory), never an endless loop.
constexpr int kMaxHalvings = 1100;  // 2^-1100 brings any finite double below 4
constexpr int kMaxTerms = 400;      // of a series that converges within ~60 terms for |Q|_F <= 4

template <typename T>
void su3_exp_update_impl(const T* u, const T* p, T* out, int64_t count, double eps) {
  at::parallel_for(0, count, 64, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      const T* pu = u + 18 * m;
      const T* pp = p + 18 * m;
      double qr[9], qi[9], q2r[9], q2i[9];
      for (int e = 0; e < 9; ++e) { qr[e] = eps * pp[2 * e]; qi[e] = eps * pp[2 * e + 1]; }
      auto square = [](const double* ar, const double* ai, double* cr, double* ci) {
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j) {
            double re = 0, im = 0;
            for (int k = 0; k < 3; ++k) {
              re += ar[i * 3 + k] * ar[k * 3 + j] - ai[i * 3 + k] * ai[k * 3 + j];
              im += ar[i * 3 + k] * ai[k * 3 + j] + ai[i * 3 + k] * ar[k * 3 + j];
            }
            cr[i * 3 + j] = re; ci[i * 3 + j] = im;
          }
      };
      double norm2 = 0;
      for (int e = 0; e < 9; ++e) norm2 += qr[e] * qr[e] + qi[e] * qi[e];
      int halvings = 0;  // bounded: an infinite norm must not loop forever
      while (norm2 > 16.0 && halvings < kMaxHalvings) { norm2 *= 0.25; ++halvings; }
      if (halvings)
        for (int e = 0; e < 9; ++e) { qr[e] = std::ldexp(qr[e], -halvings); qi[e] = std::ldexp(qi[e], -halvings); }
      square(qr, qi, q2r, q2i);
      const double c1 = 0.5 * (q2r[0] + q2r[4] + q2r[8]);
      double c0 = 0;  // tr(Q Q^2) / 3 = sum_ij Q_ij (Q^2)_ji / 3, real
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) c0 += qr[i * 3 + j] * q2r[j * 3 + i] - qi[i * 3 + j] * q2i[j * 3 + i];
      c0 /= 3.0;
      const double r = std::sqrt(2.0 * c1);
      double a = 1, b = 0, c = 0, re[3] = {0, 0, 0}, im[3] = {0, 0, 0}, coeff = 1, rk = 1;
      const double rr = std::max(r, 1e-300);
      for (int k = 0;;) {
        double* target = (k % 2 == 0) ? re : im;
        const double sign = (k % 4 == 0 || k % 4 == 1) ? 1.0 : -1.0;
        target[0] += sign * coeff * a; target[1] += sign * coeff * b; target[2] += sign * coeff * c;
        ++k;
        coeff /= k;
        rk *= rr;  // r^k
        if ((coeff * rk < 1e-17 && k > 2) || k >= kMaxTerms) break;  // NaN or inf: k >= kMaxTerms
        const double na = c * c0, nb = a + c * c1;
        c = b; a = na; b = nb;
      }
      // E = f0 + f1 Q + f2 Q^2
      double er[9], ei[9];
      for (int e = 0; e < 9; ++e) {
        er[e] = re[1] * qr[e] - im[1] * qi[e] + re[2] * q2r[e] - im[2] * q2i[e];
        ei[e] = re[1] * qi[e] + im[1] * qr[e] + re[2] * q2i[e] + im[2] * q2r[e];
      }
      for (int i = 0; i < 3; ++i) { er[4 * i] += re[0]; ei[4 * i] += im[0]; }
      for (int h = 0; h < halvings; ++h) {
        double sr[9], si[9];
        square(er, ei, sr, si);
        for (int e = 0; e < 9; ++e) { er[e] = sr[e]; ei[e] = si[e]; }
      }
      T* po = out + 18 * m;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
          double sre = 0, sim = 0;
          for (int k = 0; k < 3; ++k) {
            const double ur = pu[2 * (k * 3 + j)], ui = pu[2 * (k * 3 + j) + 1];
            sre += er[i * 3 + k] * ur - ei[i * 3 + k] * ui;
            sim += er[i * 3 + k] * ui + ei[i * 3 + k] * ur;
          }
          po[2 * (i * 3 + j)] = static_cast<T>(sre);
          po[2 * (i * 3 + j) + 1] = static_cast<T>(sim);
        }
    }
  });
}

// ---------------------------------------------------------------------------------
// Python bindings: argument checks, dtype and N dispatch

void check(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

template <typename F2, typename F3>
void dispatch_n(int64_t n, F2 f2, F3 f3) {
  if (n == 2) f2();
  else if (n == 3) f3();
  else TORCH_CHECK(false, "lattice kernels: N = ", n, "; allowed: 2, 3");
}

torch::Tensor gauge_force(torch::Tensor links, torch::Tensor fwd, torch::Tensor bwd, double coef) {
  check(links, "links"); check(fwd, "fwd"); check(bwd, "bwd");
  TORCH_CHECK(links.dim() == 5, "gauge_force: links must be [B, d, V, N, N]");
  const int64_t batch = links.size(0), dim = links.size(1), volume = links.size(2), n = links.size(3);
  auto out = torch::empty_like(links);
  const int64_t* f = fwd.data_ptr<int64_t>();
  const int64_t* b = bwd.data_ptr<int64_t>();
  if (links.scalar_type() == at::kComplexDouble) {
    const double* l = reinterpret_cast<const double*>(links.data_ptr());
    double* o = reinterpret_cast<double*>(out.data_ptr());
    dispatch_n(n, [&] { gauge_force_impl<double, 2>(l, o, f, b, batch, dim, volume, coef); },
               [&] { gauge_force_impl<double, 3>(l, o, f, b, batch, dim, volume, coef); });
  } else {
    TORCH_CHECK(links.scalar_type() == at::kComplexFloat, "gauge_force: dtype must be complex64 or complex128");
    const float* l = reinterpret_cast<const float*>(links.data_ptr());
    float* o = reinterpret_cast<float*>(out.data_ptr());
    dispatch_n(n, [&] { gauge_force_impl<float, 2>(l, o, f, b, batch, dim, volume, coef); },
               [&] { gauge_force_impl<float, 3>(l, o, f, b, batch, dim, volume, coef); });
  }
  return out;
}

template <typename T>
void staple_dispatch(const torch::Tensor& links, const torch::Tensor* grad, torch::Tensor& out, const int64_t* f,
                     const int64_t* b) {
  const int64_t batch = links.size(0), dim = links.size(1), volume = links.size(2), n = links.size(3);
  const T* l = reinterpret_cast<const T*>(links.data_ptr());
  T* o = reinterpret_cast<T*>(out.data_ptr());
  if (grad == nullptr) {
    dispatch_n(n, [&] { plaquette_staple_impl<T, 2>(l, o, f, b, batch, dim, volume); },
               [&] { plaquette_staple_impl<T, 3>(l, o, f, b, batch, dim, volume); });
  } else {
    const T* g = reinterpret_cast<const T*>(grad->data_ptr());
    dispatch_n(n, [&] { plaquette_staple_vjp_impl<T, 2>(l, g, o, f, b, batch, dim, volume); },
               [&] { plaquette_staple_vjp_impl<T, 3>(l, g, o, f, b, batch, dim, volume); });
  }
}

// the cycle length of each direction's forward table: the extents L_mu, [d]
std::vector<int64_t> cycle_lengths(const int64_t* fwd, int64_t dim, int64_t volume) {
  std::vector<int64_t> out(static_cast<size_t>(dim));
  for (int64_t mu = 0; mu < dim; ++mu) {
    const int64_t* next = fwd + mu * volume;
    int64_t length = 1;
    for (int64_t s = next[0]; s != 0; s = next[s]) {
      TORCH_CHECK(s >= 0 && s < volume && length < volume, "polyakov_staples: fwd is not a periodic table");
      ++length;
    }
    out[static_cast<size_t>(mu)] = length;
  }
  return out;
}

template <typename T>
void polyakov_dispatch(const torch::Tensor& links, const torch::Tensor* grad, torch::Tensor& out, const int64_t* f,
                       const int64_t* b) {
  const int64_t batch = links.size(0), dim = links.size(1), volume = links.size(2), n = links.size(3);
  const std::vector<int64_t> extent = cycle_lengths(f, dim, volume);
  const int64_t* e = extent.data();
  const T* l = reinterpret_cast<const T*>(links.data_ptr());
  T* o = reinterpret_cast<T*>(out.data_ptr());
  if (grad == nullptr) {
    dispatch_n(n, [&] { polyakov_staple_impl<T, 2>(l, o, f, e, batch, dim, volume); },
               [&] { polyakov_staple_impl<T, 3>(l, o, f, e, batch, dim, volume); });
  } else {
    const T* g = reinterpret_cast<const T*>(grad->data_ptr());
    dispatch_n(n, [&] { polyakov_staple_vjp_impl<T, 2>(l, g, o, f, b, e, batch, dim, volume); },
               [&] { polyakov_staple_vjp_impl<T, 3>(l, g, o, f, b, e, batch, dim, volume); });
  }
}

// A staple kernel's checks and dtype dispatch: links [B, d, V, N, N], grad of their shape (null:
// the forward pass), run(T{}, links, grad, out, fwd, bwd) fills out.
template <typename Run>
torch::Tensor staple_call(const std::string& name, torch::Tensor links, const torch::Tensor* grad, torch::Tensor fwd,
                          torch::Tensor bwd, Run run) {
  check(links, "links"); check(fwd, "fwd"); check(bwd, "bwd");
  TORCH_CHECK(links.dim() == 5 && links.size(3) == links.size(4) && links.size(2) > 0,
              name, ": links must be [B, d, V, N, N]");
  TORCH_CHECK(fwd.dim() == 2 && fwd.size(0) == links.size(1) && fwd.size(1) == links.size(2) &&
                  bwd.sizes() == fwd.sizes(),
              name, ": neighbour tables must be [d, V] of the links");
  if (grad != nullptr) {
    check(*grad, "grad");
    TORCH_CHECK(grad->sizes() == links.sizes() && grad->scalar_type() == links.scalar_type(),
                name, "_vjp: grad must have the links' shape and dtype");
  }
  auto out = torch::empty_like(links);
  const int64_t* f = fwd.data_ptr<int64_t>();
  const int64_t* b = bwd.data_ptr<int64_t>();
  if (links.scalar_type() == at::kComplexDouble) {
    run(double{}, links, grad, out, f, b);
  } else {
    TORCH_CHECK(links.scalar_type() == at::kComplexFloat, name, ": dtype must be complex64 or complex128");
    run(float{}, links, grad, out, f, b);
  }
  return out;
}

const auto plaquette_run = [](auto tag, auto&&... args) { staple_dispatch<decltype(tag)>(args...); };
const auto polyakov_run = [](auto tag, auto&&... args) { polyakov_dispatch<decltype(tag)>(args...); };

torch::Tensor plaquette_staple(torch::Tensor links, torch::Tensor fwd, torch::Tensor bwd) {
  return staple_call("plaquette_staple", links, nullptr, fwd, bwd, plaquette_run);
}

torch::Tensor plaquette_staple_vjp(torch::Tensor links, torch::Tensor grad, torch::Tensor fwd, torch::Tensor bwd) {
  return staple_call("plaquette_staple", links, &grad, fwd, bwd, plaquette_run);
}

torch::Tensor polyakov_staples(torch::Tensor links, torch::Tensor fwd, torch::Tensor bwd) {
  return staple_call("polyakov_staples", links, nullptr, fwd, bwd, polyakov_run);
}

torch::Tensor polyakov_staples_vjp(torch::Tensor links, torch::Tensor grad, torch::Tensor fwd, torch::Tensor bwd) {
  return staple_call("polyakov_staples", links, &grad, fwd, bwd, polyakov_run);
}

torch::Tensor gauge_force_rows(torch::Tensor links, torch::Tensor row_fwd, torch::Tensor row_bwd, double coef) {
  check(links, "links"); check(row_fwd, "row_fwd"); check(row_bwd, "row_bwd");
  TORCH_CHECK(links.dim() == 6, "gauge_force_rows: links must be [B, d, rows, L, N, N]");
  const int64_t batch = links.size(0), dim = links.size(1), rows = links.size(2), length = links.size(3);
  const int64_t n = links.size(4);
  TORCH_CHECK(length % 8 == 0, "gauge_force_rows: the last extent must be a multiple of 8");
  auto out = torch::empty_like(links);
  auto soa = torch::empty({batch * dim * rows * 2 * n * n * (length + 2)}, links.options().dtype(
      links.scalar_type() == at::kComplexDouble ? at::kDouble : at::kFloat));
  const int64_t* f = row_fwd.data_ptr<int64_t>();
  const int64_t* b = row_bwd.data_ptr<int64_t>();
  if (links.scalar_type() == at::kComplexDouble) {
    const double* l = reinterpret_cast<const double*>(links.data_ptr());
    double* o = reinterpret_cast<double*>(out.data_ptr());
    double* w = soa.data_ptr<double>();
    dispatch_n(n, [&] { gauge_force_rows_impl<double, 2>(l, o, w, f, b, batch, dim, rows, length, coef); },
               [&] { gauge_force_rows_impl<double, 3>(l, o, w, f, b, batch, dim, rows, length, coef); });
  } else {
    TORCH_CHECK(links.scalar_type() == at::kComplexFloat, "gauge_force_rows: dtype must be complex64 or complex128");
    const float* l = reinterpret_cast<const float*>(links.data_ptr());
    float* o = reinterpret_cast<float*>(out.data_ptr());
    float* w = soa.data_ptr<float>();
    dispatch_n(n, [&] { gauge_force_rows_impl<float, 2>(l, o, w, f, b, batch, dim, rows, length, coef); },
               [&] { gauge_force_rows_impl<float, 3>(l, o, w, f, b, batch, dim, rows, length, coef); });
  }
  return out;
}

template <typename T>
void hop_dispatch(bool wilson, const torch::Tensor& links, const torch::Tensor& psi, torch::Tensor& out,
                  const torch::Tensor& fwd, const torch::Tensor& bwd, const torch::Tensor& cf,
                  const torch::Tensor& cb) {
  const int64_t batch = links.size(0), dim = links.size(1), volume = links.size(2), n = links.size(3);
  const T* l = reinterpret_cast<const T*>(links.data_ptr());
  const T* p = reinterpret_cast<const T*>(psi.data_ptr());
  T* o = reinterpret_cast<T*>(out.data_ptr());
  const int64_t* f = fwd.data_ptr<int64_t>();
  const int64_t* b = bwd.data_ptr<int64_t>();
  const T* a = cf.data_ptr<T>();
  const T* c = cb.data_ptr<T>();
  if (wilson) {
    TORCH_CHECK(dim == 4, "wilson_hop: d = ", dim, "; allowed: 4");
    dispatch_n(n, [&] { wilson_hop_impl<T, 2>(l, p, o, f, b, a, c, batch, volume); },
               [&] { wilson_hop_impl<T, 3>(l, p, o, f, b, a, c, batch, volume); });
  } else {
    dispatch_n(n, [&] { staggered_hop_impl<T, 2>(l, p, o, f, b, a, c, batch, dim, volume); },
               [&] { staggered_hop_impl<T, 3>(l, p, o, f, b, a, c, batch, dim, volume); });
  }
}

torch::Tensor hop(bool wilson, torch::Tensor links, torch::Tensor psi, torch::Tensor fwd, torch::Tensor bwd,
                  torch::Tensor cf, torch::Tensor cb) {
  check(links, "links"); check(psi, "psi"); check(fwd, "fwd"); check(bwd, "bwd"); check(cf, "cf"); check(cb, "cb");
  TORCH_CHECK(links.dim() == 5, "hop: links must be [B, d, V, N, N]");
  TORCH_CHECK(psi.scalar_type() == links.scalar_type(), "hop: psi and links must share a dtype");
  TORCH_CHECK(psi.size(0) == links.size(0), "hop: psi and links must share the batch size");
  auto out = torch::empty_like(psi);
  if (links.scalar_type() == at::kComplexDouble) {
    hop_dispatch<double>(wilson, links, psi, out, fwd, bwd, cf, cb);
  } else {
    TORCH_CHECK(links.scalar_type() == at::kComplexFloat, "hop: dtype must be complex64 or complex128");
    hop_dispatch<float>(wilson, links, psi, out, fwd, bwd, cf, cb);
  }
  return out;
}

torch::Tensor su3_exp_update(torch::Tensor links, torch::Tensor momenta, double eps) {
  check(links, "links"); check(momenta, "momenta");
  TORCH_CHECK(links.sizes() == momenta.sizes(), "su3_exp_update: links and momenta must share a shape");
  TORCH_CHECK(links.scalar_type() == momenta.scalar_type(), "su3_exp_update: links and momenta must share a dtype");
  TORCH_CHECK(links.dim() >= 2 && links.size(-1) == 3 && links.size(-2) == 3, "su3_exp_update: [..., 3, 3]");
  auto out = torch::empty_like(links);
  const int64_t count = links.numel() / 9;
  if (links.scalar_type() == at::kComplexDouble) {
    su3_exp_update_impl<double>(reinterpret_cast<const double*>(links.data_ptr()),
                                reinterpret_cast<const double*>(momenta.data_ptr()),
                                reinterpret_cast<double*>(out.data_ptr()), count, eps);
  } else {
    TORCH_CHECK(links.scalar_type() == at::kComplexFloat, "su3_exp_update: dtype must be complex64 or complex128");
    su3_exp_update_impl<float>(reinterpret_cast<const float*>(links.data_ptr()),
                               reinterpret_cast<const float*>(momenta.data_ptr()),
                               reinterpret_cast<float*>(out.data_ptr()), count, eps);
  }
  return out;
}

torch::Tensor staggered_hop(torch::Tensor links, torch::Tensor psi, torch::Tensor fwd, torch::Tensor bwd,
                            torch::Tensor cf, torch::Tensor cb) {
  return hop(false, links, psi, fwd, bwd, cf, cb);
}

torch::Tensor wilson_hop(torch::Tensor links, torch::Tensor psi, torch::Tensor fwd, torch::Tensor bwd,
                         torch::Tensor pf, torch::Tensor pb) {
  return hop(true, links, psi, fwd, bwd, pf, pb);
}

// --- U(1) masked stout stack (nn/masked_stout.py): the transform of field-transformed HMC ---------
//
// Angles theta [B, d, V]. Layer k moves theta_mu(x), mu = mus[k], for the M sites x = sites[k][m]:
//   theta' = theta - rho_k sum_j sin A_j,   A_j = theta_mu(x) + s_j,
// s_j the staples' angles, per nu != mu (ascending) the one above, theta_nu(x+mu) - theta_mu(x+nu)
// - theta_nu(x), then the one below, -theta_nu(x+mu-nu) - theta_mu(x-nu) + theta_nu(x-nu);
// log|det| = sum log(1 - rho_k sum_j cos A_j). No staple of a moved link holds a moved link (the
// masks), so a layer updates its links in place in any order, and its vector-Jacobian product
// adds into the cotangent in place. Batch entries are independent: they run in parallel.

template <typename T>
struct StoutGeometry {
  const double* rho;
  const int64_t* mus;
  const int64_t* sites;  // [K, M]
  const int64_t* fwd;    // [d, V]
  const int64_t* bwd;
  int64_t layers, moved, dim, volume;
};

// e^{-i delta} for |delta| <= 1 (|rho| sum_j |sin A_j| < rho_max 2 (d - 1) = 1) by Horner's rule:
// sin delta = delta (1 - d2/(2 3) (1 - d2/(4 5) (...))), cos delta = 1 - d2/(1 2) (1 - d2/(3 4) (...)),
// to delta^21 and delta^20, whose remainders are below 1e-19 there (no division on the hot path)
template <typename T>
inline void unit_phase_of_small(T delta, T& c, T& s) {
  constexpr T kSin[10] = {T(1.0 / (20 * 21)), T(1.0 / (18 * 19)), T(1.0 / (16 * 17)), T(1.0 / (14 * 15)),
                          T(1.0 / (12 * 13)), T(1.0 / (10 * 11)), T(1.0 / (8 * 9)),   T(1.0 / (6 * 7)),
                          T(1.0 / (4 * 5)),   T(1.0 / (2 * 3))};
  constexpr T kCos[10] = {T(1.0 / (19 * 20)), T(1.0 / (17 * 18)), T(1.0 / (15 * 16)), T(1.0 / (13 * 14)),
                          T(1.0 / (11 * 12)), T(1.0 / (9 * 10)),  T(1.0 / (7 * 8)),   T(1.0 / (5 * 6)),
                          T(1.0 / (3 * 4)),   T(1.0 / (1 * 2))};
  const T d2 = delta * delta;
  T sp = T(1), cp = T(1);
  for (int k = 0; k < 10; ++k) {
    sp = T(1) - d2 * kSin[k] * sp;
    cp = T(1) - d2 * kCos[k] * cp;
  }
  s = -delta * sp;
  c = cp;
}

// The forward pass of one configuration on phases: z = e^{i theta} (given), so that the loops'
// e^{i A_j} are products of neighbours' phases and a moved link needs no trigonometric function,
// only e^{-i delta} of its small shift delta = rho sum_j sin A_j. Per layer three passes over the
// moved links (their loops hold no moved link, so all loops may be read before any link moves):
// the loops and shifts (gathers), the shifts' phases (a loop the compiler vectorises), the moves.
template <typename T>
void u1_stout_forward_impl(T* y, T* zre, T* zim, T* cos_out, T* sin_out, T* log_det, const StoutGeometry<T>& g,
                           int64_t batch) {  // log_det: nullptr where not wanted
  const int64_t j_count = 2 * (g.dim - 1), per = g.dim * g.volume, v = g.volume, moved = g.moved;
  at::parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> delta(moved), er(moved), ei(moved);
    for (int64_t b = b0; b < b1; ++b) {
      T* theta = y + b * per;
      T* re = zre + b * per;
      T* im = zim + b * per;
      double total = 0.0;
      for (int64_t k = 0; k < g.layers; ++k) {
        const int64_t mu = g.mus[k];
        const int64_t* sites = g.sites + k * moved;
        const T rho = T(g.rho[k]);
        T* c_k = cos_out + ((k * batch + b) * moved) * j_count;
        T* s_k = sin_out + ((k * batch + b) * moved) * j_count;
        for (int64_t m = 0; m < moved; ++m) {
          const int64_t x = sites[m], xp = g.fwd[mu * v + x], ix = mu * v + x;
          T sum_sin = T(0), sum_cos = T(0);
          int64_t j = 0;
          for (int64_t nu = 0; nu < g.dim; ++nu) {
            if (nu == mu) continue;
            const int64_t xn = g.fwd[nu * v + x], xm = g.bwd[nu * v + x], xpm = g.bwd[nu * v + xp];
            // above: U_mu(x) U_nu(x+mu) U_mu(x+nu)^* U_nu(x)^*
            const int64_t a1 = nu * v + xp, a2 = mu * v + xn, a3 = nu * v + x;
            T pr = re[ix] * re[a1] - im[ix] * im[a1], pi = re[ix] * im[a1] + im[ix] * re[a1];
            T qr = pr * re[a2] + pi * im[a2], qi = pi * re[a2] - pr * im[a2];
            T ar = qr * re[a3] + qi * im[a3], ai = qi * re[a3] - qr * im[a3];
            c_k[m * j_count + j] = ar;
            s_k[m * j_count + j] = ai;
            sum_cos += ar;
            sum_sin += ai;
            ++j;
            // below: U_mu(x) U_nu(x+mu-nu)^* U_mu(x-nu)^* U_nu(x-nu)
            const int64_t c1 = nu * v + xpm, c2 = mu * v + xm, c3 = nu * v + xm;
            pr = re[ix] * re[c1] + im[ix] * im[c1];
            pi = im[ix] * re[c1] - re[ix] * im[c1];
            qr = pr * re[c2] + pi * im[c2];
            qi = pi * re[c2] - pr * im[c2];
            ar = qr * re[c3] - qi * im[c3];
            ai = qr * im[c3] + qi * re[c3];
            c_k[m * j_count + j] = ar;
            s_k[m * j_count + j] = ai;
            sum_cos += ar;
            sum_sin += ai;
            ++j;
          }
          delta[m] = rho * sum_sin;
          if (log_det) total += std::log1p(-double(rho) * double(sum_cos));
        }
        T* dp = delta.data();
        T* erp = er.data();
        T* eip = ei.data();
#pragma omp simd
        for (int64_t m = 0; m < moved; ++m) unit_phase_of_small(dp[m], erp[m], eip[m]);
        for (int64_t m = 0; m < moved; ++m) {
          const int64_t ix = mu * v + sites[m];
          const T nr = re[ix] * er[m] - im[ix] * ei[m], ni = re[ix] * ei[m] + im[ix] * er[m];
          re[ix] = nr;
          im[ix] = ni;
          theta[ix] -= delta[m];
        }
      }
      if (log_det) log_det[b] = T(total);
    }
  });
}

template <typename T>
void u1_stout_vjp_impl(const T* cos_in, const T* sin_in, T* grad, double grad_log_det, const StoutGeometry<T>& g,
                       int64_t batch) {
  const int64_t j_count = 2 * (g.dim - 1), per = g.dim * g.volume, v = g.volume;
  at::parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) {
    T big_g[64];
    std::vector<T> weight(g.moved);
    for (int64_t b = b0; b < b1; ++b) {
      T* gr = grad + b * per;
      for (int64_t k = g.layers - 1; k >= 0; --k) {
        const int64_t mu = g.mus[k];
        const T rho = T(g.rho[k]);
        const T* c_k = cos_in + ((k * batch + b) * g.moved) * j_count;
        const T* s_k = sin_in + ((k * batch + b) * g.moved) * j_count;
        // the log-determinant's weights d log D / d sin A_j = rho / D, D = 1 - rho sum_j cos A_j
        // (contiguous: the compiler vectorises the divisions)
        T* wp = weight.data();
        const T scale = T(grad_log_det) * rho;
#pragma omp simd
        for (int64_t m = 0; m < g.moved; ++m) {
          T sum_cos = T(0);
          for (int64_t j = 0; j < j_count; ++j) sum_cos += c_k[m * j_count + j];
          wp[m] = scale / (T(1) - rho * sum_cos);
        }
        for (int64_t m = 0; m < g.moved; ++m) {
          const int64_t x = g.sites[k * g.moved + m];
          const T* ca = c_k + m * j_count;
          const T* sa = s_k + m * j_count;
          const T gy = gr[mu * v + x];
          T total = T(0);
          for (int64_t j = 0; j < j_count; ++j) {
            big_g[j] = -rho * ca[j] * gy + wp[m] * sa[j];
            total += big_g[j];
          }
          gr[mu * v + x] += total;
          const int64_t xp = g.fwd[mu * v + x];
          int j = 0;
          for (int64_t nu = 0; nu < g.dim; ++nu) {
            if (nu == mu) continue;
            const int64_t xn = g.fwd[nu * v + x], xm = g.bwd[nu * v + x], xpm = g.bwd[nu * v + xp];
            const T up = big_g[j++], down = big_g[j++];
            gr[nu * v + xp] += up;  // the staple above: theta_nu(x+mu) - theta_mu(x+nu) - theta_nu(x)
            gr[mu * v + xn] -= up;
            gr[nu * v + x] -= up;
            gr[nu * v + xpm] -= down;  // below: -theta_nu(x+mu-nu) - theta_mu(x-nu) + theta_nu(x-nu)
            gr[mu * v + xm] -= down;
            gr[nu * v + xm] += down;
          }
        }
      }
    }
  });
}

template <typename T>
StoutGeometry<T> stout_geometry(const torch::Tensor& theta, const torch::Tensor& rho, const torch::Tensor& mus,
                                const torch::Tensor& sites, const torch::Tensor& fwd, const torch::Tensor& bwd) {
  check(rho, "rho"); check(mus, "mus"); check(sites, "sites"); check(fwd, "fwd"); check(bwd, "bwd");
  TORCH_CHECK(theta.dim() == 3, "u1_stout: theta must be [B, d, V]");
  TORCH_CHECK(rho.scalar_type() == at::kDouble && rho.dim() == 1, "u1_stout: rho must be float64 [K]");
  TORCH_CHECK(mus.scalar_type() == at::kLong && mus.numel() == rho.numel(), "u1_stout: mus must be int64 [K]");
  TORCH_CHECK(sites.scalar_type() == at::kLong && sites.dim() == 2 && sites.size(0) == rho.numel(),
              "u1_stout: sites must be int64 [K, M]");
  const int64_t dim = theta.size(1), volume = theta.size(2);
  TORCH_CHECK(dim >= 2 && 2 * (dim - 1) <= 64, "u1_stout: d = ", dim, "; allowed: 2 .. 33");
  TORCH_CHECK(fwd.scalar_type() == at::kLong && fwd.size(0) == dim && fwd.size(1) == volume, "u1_stout: fwd [d, V]");
  TORCH_CHECK(bwd.scalar_type() == at::kLong && bwd.size(0) == dim && bwd.size(1) == volume, "u1_stout: bwd [d, V]");
  return StoutGeometry<T>{rho.data_ptr<double>(), mus.data_ptr<int64_t>(), sites.data_ptr<int64_t>(),
                          fwd.data_ptr<int64_t>(), bwd.data_ptr<int64_t>(), rho.numel(), sites.size(1), dim, volume};
}

std::vector<torch::Tensor> u1_stout_forward(torch::Tensor theta, torch::Tensor rho, torch::Tensor mus,
                                            torch::Tensor sites, torch::Tensor fwd, torch::Tensor bwd,
                                            bool with_log_det) {
  check(theta, "theta");
  TORCH_CHECK(theta.scalar_type() == at::kDouble || theta.scalar_type() == at::kFloat,
              "u1_stout_forward: dtype must be float32 or float64");
  auto y = theta.clone();
  auto zre = torch::cos(theta);  // e^{i theta}, vectorised by ATen
  auto zim = torch::sin(theta);
  const int64_t batch = theta.size(0), j_count = 2 * (theta.size(1) - 1);
  auto cos_out = torch::empty({rho.numel(), batch, sites.size(1), j_count}, theta.options());
  auto sin_out = torch::empty_like(cos_out);
  auto log_det = torch::zeros({with_log_det ? batch : 0}, theta.options());
  auto run = [&](auto zero) {
    using T = decltype(zero);
    auto g = stout_geometry<T>(theta, rho, mus, sites, fwd, bwd);
    u1_stout_forward_impl<T>(y.data_ptr<T>(), zre.data_ptr<T>(), zim.data_ptr<T>(), cos_out.data_ptr<T>(),
                             sin_out.data_ptr<T>(), with_log_det ? log_det.data_ptr<T>() : nullptr, g, batch);
  };
  if (theta.scalar_type() == at::kDouble) run(0.0); else run(0.0f);
  return {y, cos_out, sin_out, log_det};
}

torch::Tensor u1_stout_vjp(torch::Tensor cos_in, torch::Tensor sin_in, torch::Tensor grad_y, double grad_log_det,
                           torch::Tensor rho, torch::Tensor mus, torch::Tensor sites, torch::Tensor fwd,
                           torch::Tensor bwd) {
  check(cos_in, "cos"); check(sin_in, "sin"); check(grad_y, "grad_y");
  const int64_t batch = grad_y.size(0), j_count = 2 * (grad_y.size(1) - 1);
  TORCH_CHECK(cos_in.sizes() == sin_in.sizes() && cos_in.dim() == 4 && cos_in.size(0) == rho.numel() &&
                  cos_in.size(1) == batch && cos_in.size(2) == sites.size(1) && cos_in.size(3) == j_count,
              "u1_stout_vjp: cos and sin must be [K, B, M, 2 (d - 1)]");
  TORCH_CHECK(cos_in.scalar_type() == grad_y.scalar_type() && sin_in.scalar_type() == grad_y.scalar_type(),
              "u1_stout_vjp: cos, sin and grad_y must share a dtype");
  auto grad = grad_y.clone();
  if (grad_y.scalar_type() == at::kDouble) {
    auto g = stout_geometry<double>(grad_y, rho, mus, sites, fwd, bwd);
    u1_stout_vjp_impl<double>(cos_in.data_ptr<double>(), sin_in.data_ptr<double>(), grad.data_ptr<double>(),
                              grad_log_det, g, batch);
  } else {
    TORCH_CHECK(grad_y.scalar_type() == at::kFloat, "u1_stout_vjp: dtype must be float32 or float64");
    auto g = stout_geometry<float>(grad_y, rho, mus, sites, fwd, bwd);
    u1_stout_vjp_impl<float>(cos_in.data_ptr<float>(), sin_in.data_ptr<float>(), grad.data_ptr<float>(),
                             grad_log_det, g, batch);
  }
  return grad;
}

// --- batched small complex matrix products (nn: stout, CASK; forward and backward) ---------------
//
// out[m] = op_a(a[m]) op_b(b[m]) for m < count, op = identity or conjugate transpose, N x N
// row-major complex interleaved. Batched complex GEMM of 2 x 2 / 3 x 3 matrices costs ~100 ns a
// product in a general library; here the N^3 multiply-adds are unrolled per matrix.

template <typename T, int N, bool AdjA, bool AdjB>
void small_matmul_impl(const T* a, const T* b, T* out, int64_t count) {
  // W matrices per block, transposed into structure-of-arrays registers (the adjoints applied
  // while loading), the N^3 complex multiply-adds vectorised over the W lanes
  constexpr int W = lanes<T>();
  constexpr int E = N * N;
  const int64_t blocks = (count + W - 1) / W;
  at::parallel_for(0, blocks, 16, [&](int64_t begin, int64_t end) {
    alignas(64) T ar[E][W], ai[E][W], br[E][W], bi[E][W], cr[E][W], ci[E][W];
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t m0 = blk * W;
      const int valid = static_cast<int>(std::min<int64_t>(W, count - m0));
      for (int w = 0; w < W; ++w) {
        const int64_t m = m0 + std::min(w, valid - 1);  // tail lanes repeat the last matrix
        const T* pa = a + 2 * E * m;
        const T* pb = b + 2 * E * m;
        for (int i = 0; i < N; ++i)
          for (int j = 0; j < N; ++j) {
            const int sa = AdjA ? (j * N + i) : (i * N + j);
            const int sb = AdjB ? (j * N + i) : (i * N + j);
            ar[i * N + j][w] = pa[2 * sa];
            ai[i * N + j][w] = AdjA ? -pa[2 * sa + 1] : pa[2 * sa + 1];
            br[i * N + j][w] = pb[2 * sb];
            bi[i * N + j][w] = AdjB ? -pb[2 * sb + 1] : pb[2 * sb + 1];
          }
      }
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
#pragma omp simd
          for (int w = 0; w < W; ++w) {
            T re = 0, im = 0;
            for (int k = 0; k < N; ++k) {
              re += ar[i * N + k][w] * br[k * N + j][w] - ai[i * N + k][w] * bi[k * N + j][w];
              im += ar[i * N + k][w] * bi[k * N + j][w] + ai[i * N + k][w] * br[k * N + j][w];
            }
            cr[i * N + j][w] = re;
            ci[i * N + j][w] = im;
          }
        }
      for (int w = 0; w < valid; ++w) {
        T* po = out + 2 * E * (m0 + w);
        for (int e = 0; e < E; ++e) {
          po[2 * e] = cr[e][w];
          po[2 * e + 1] = ci[e][w];
        }
      }
    }
  });
}

template <typename T, int N>
void small_matmul_flags(const T* a, const T* b, T* out, int64_t count, bool adj_a, bool adj_b) {
  if (adj_a) {
    if (adj_b) small_matmul_impl<T, N, true, true>(a, b, out, count);
    else small_matmul_impl<T, N, true, false>(a, b, out, count);
  } else {
    if (adj_b) small_matmul_impl<T, N, false, true>(a, b, out, count);
    else small_matmul_impl<T, N, false, false>(a, b, out, count);
  }
}

template <typename T>
void small_matmul_dispatch(const torch::Tensor& a, const torch::Tensor& b, torch::Tensor& out, int64_t n,
                           bool adj_a, bool adj_b) {
  const T* pa = reinterpret_cast<const T*>(a.data_ptr());
  const T* pb = reinterpret_cast<const T*>(b.data_ptr());
  T* po = reinterpret_cast<T*>(out.data_ptr());
  const int64_t count = a.numel() / (n * n);
  dispatch_n(n, [&] { small_matmul_flags<T, 2>(pa, pb, po, count, adj_a, adj_b); },
             [&] { small_matmul_flags<T, 3>(pa, pb, po, count, adj_a, adj_b); });
}

torch::Tensor small_matmul(torch::Tensor a, torch::Tensor b, bool adj_a, bool adj_b) {
  check(a, "a"); check(b, "b");
  TORCH_CHECK(a.sizes() == b.sizes(), "small_matmul: a and b must share a shape");
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "small_matmul: a and b must share a dtype");
  TORCH_CHECK(a.dim() >= 2 && a.size(-1) == a.size(-2) && (a.size(-1) == 2 || a.size(-1) == 3),
              "small_matmul: [..., N, N] with N = 2 or 3");
  auto out = torch::empty_like(a);
  if (a.scalar_type() == at::kComplexDouble) {
    small_matmul_dispatch<double>(a, b, out, a.size(-1), adj_a, adj_b);
  } else {
    TORCH_CHECK(a.scalar_type() == at::kComplexFloat, "small_matmul: dtype must be complex64 or complex128");
    small_matmul_dispatch<float>(a, b, out, a.size(-1), adj_a, adj_b);
  }
  return out;
}

// ---------------------------------------------------------------------------------
// The SU(2) stout update out = exp(-i P) U, P = TH(U S) (nn.stout.stout_update), and its
// vector-Jacobian product, one 2 x 2 link at a time. With P = p_k sigma_k,
// p_k = Im tr(sigma_k X) / 2 (X = U S), r = |p|: exp(-i P) = cos r - i (sin r / r) P.
// VJP (torch's convention, dL = Re tr(G^dag d out)): with G_E = G U^dag,
// g_0 = tr G_E^dag, g_k = tr(G_E^dag sigma_k), s = sin r / r, t = (r cos r - sin r) / r^3:
//   dL/dp_k = w_k = (-s Re g_0 + t Im(g . p)) p_k + s Im g_k,
//   grad X = (i / 2) w_k sigma_k,  grad U = E^dag G + (grad X) S^dag,  grad S = U^dag grad X.
template <typename T>
struct C2 {
  T re, im;
};
template <typename T>
inline C2<T> cmul(C2<T> a, C2<T> b) { return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
template <typename T>
inline C2<T> cadd(C2<T> a, C2<T> b) { return {a.re + b.re, a.im + b.im}; }
template <typename T>
inline C2<T> cconj(C2<T> a) { return {a.re, -a.im}; }

// c = op(a) op(b) for 2 x 2 matrices stored row-major as 4 complex numbers
template <typename T, bool DA, bool DB>
inline void mul2(const C2<T>* a, const C2<T>* b, C2<T>* c) {
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      C2<T> acc{T(0), T(0)};
      for (int k = 0; k < 2; ++k) {
        const C2<T> x = DA ? cconj(a[k * 2 + i]) : a[i * 2 + k];
        const C2<T> y = DB ? cconj(b[j * 2 + k]) : b[k * 2 + j];
        acc = cadd(acc, cmul(x, y));
      }
      c[i * 2 + j] = acc;
    }
}

// p_k of P = TH(X), and cos r, sin r / r, (r cos r - sin r) / r^3 (series where they cancel)
template <typename T>
inline void su2_stout_coefficients(const C2<T>* x, T* p, T& c, T& s, T& t) {
  p[0] = T(0.5) * (x[1].im + x[2].im);
  p[1] = T(0.5) * (x[1].re - x[2].re);
  p[2] = T(0.5) * (x[0].im - x[3].im);
  const T r2 = p[0] * p[0] + p[1] * p[1] + p[2] * p[2];
  const T r = std::sqrt(r2);
  c = std::cos(r);
  // sin r / r: the series below r^2 = 1e-6 (its first omitted term r^8 / 9! < 1e-23)
  s = r2 < T(1e-6) ? T(1) - r2 / 6 + r2 * r2 / 120 - r2 * r2 * r2 / 5040 : std::sin(r) / r;
  // (cos r - sin r / r) / r^2 cancels below r^2 = 1e-2: the series there (the omitted terms below 1e-18)
  t = r2 < T(1e-2) ? T(-1) / 3 + r2 / 30 - r2 * r2 / 840 + r2 * r2 * r2 / 45360 - r2 * r2 * r2 * r2 / 3991680
                   : (c - s) / r2;
}

// E = cos r - i s P
template <typename T>
inline void su2_stout_exp(const T* p, T c, T s, C2<T>* e) {
  e[0] = {c, -s * p[2]};
  e[1] = {-s * p[1], -s * p[0]};
  e[2] = {s * p[1], -s * p[0]};
  e[3] = {c, s * p[2]};
}

// exp(-i TH(U S)) W: W = target (CASK's attention rotates the input links by a rotation made on
// the value links), or W = U where target == links (a stout layer)
template <typename T>
void su2_stout_update_impl(const T* links, const T* staple, const T* target, T* out, int64_t count) {
  at::parallel_for(0, count, 256, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      const C2<T>* u = reinterpret_cast<const C2<T>*>(links) + 4 * m;
      const C2<T>* st = reinterpret_cast<const C2<T>*>(staple) + 4 * m;
      const C2<T>* w = reinterpret_cast<const C2<T>*>(target) + 4 * m;
      C2<T> x[4], e[4];
      T p[3], c, s, t;
      mul2<T, false, false>(u, st, x);
      su2_stout_coefficients(x, p, c, s, t);
      su2_stout_exp(p, c, s, e);
      mul2<T, false, false>(e, w, reinterpret_cast<C2<T>*>(out) + 4 * m);
    }
  });
}

// grad_target == nullptr: target is links, its gradient is added into grad_links
template <typename T>
void su2_stout_update_vjp_impl(const T* links, const T* staple, const T* target, const T* grad, T* grad_links,
                               T* grad_staple, T* grad_target, int64_t count) {
  at::parallel_for(0, count, 256, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      const C2<T>* u = reinterpret_cast<const C2<T>*>(links) + 4 * m;
      const C2<T>* st = reinterpret_cast<const C2<T>*>(staple) + 4 * m;
      const C2<T>* w = reinterpret_cast<const C2<T>*>(target) + 4 * m;
      const C2<T>* g = reinterpret_cast<const C2<T>*>(grad) + 4 * m;
      C2<T>* gu = reinterpret_cast<C2<T>*>(grad_links) + 4 * m;
      C2<T>* gs = reinterpret_cast<C2<T>*>(grad_staple) + 4 * m;
      C2<T> x[4], e[4], ge[4], gx[4], tmp[4];
      T p[3], c, s, t;
      mul2<T, false, false>(u, st, x);
      su2_stout_coefficients(x, p, c, s, t);
      su2_stout_exp(p, c, s, e);
      mul2<T, false, true>(g, w, ge);  // G_E = G W^dag
      // g_0 = cconj(ge00 + ge11); g_k = sum_ab cconj(ge_ab) (sigma_k)_ab
      const C2<T> g0 = cconj(cadd(ge[0], ge[3]));
      const C2<T> g1 = cconj(cadd(ge[1], ge[2]));
      const C2<T> g2 = {ge[2].im - ge[1].im, ge[2].re - ge[1].re};  // -i cconj(ge01) + i cconj(ge10)
      const C2<T> g3 = {ge[0].re - ge[3].re, -(ge[0].im - ge[3].im)};
      const T im_gp = g1.im * p[0] + g2.im * p[1] + g3.im * p[2];
      const T alpha = -s * g0.re + t * im_gp;
      const T w1 = alpha * p[0] + s * g1.im, w2 = alpha * p[1] + s * g2.im, w3 = alpha * p[2] + s * g3.im;
      // grad X = (i / 2) W, W = [[w3, w1 - i w2], [w1 + i w2, -w3]]
      gx[0] = {T(0), T(0.5) * w3};
      gx[1] = {T(0.5) * w2, T(0.5) * w1};
      gx[2] = {T(-0.5) * w2, T(0.5) * w1};
      gx[3] = {T(0), T(-0.5) * w3};
      mul2<T, false, true>(gx, st, tmp);  // grad U = grad X S^dag (+ E^dag G where W = U)
      if (grad_target == nullptr) {
        mul2<T, true, false>(e, g, gu);
        for (int k = 0; k < 4; ++k) gu[k] = cadd(gu[k], tmp[k]);
      } else {
        mul2<T, true, false>(e, g, reinterpret_cast<C2<T>*>(grad_target) + 4 * m);  // grad W = E^dag G
        for (int k = 0; k < 4; ++k) gu[k] = tmp[k];
      }
      mul2<T, true, false>(u, gx, gs);  // U^dag grad X
    }
  });
}


// ---------------------------------------------------------------------------------
// SU(3) stout update Y = exp(i P) U, P = -TH(X), X = U S (nn.stout.stout_update), in double
// whatever the storage type. exp(i P) by the Cayley-Hamilton series of groups._expi_su3 (as in
// su3_exp_update_impl): P^3 = c1 P + c0 (c1 = tr P^2 / 2, c0 = tr P^3 / 3), P^k = a_k + b_k P
// + c_k P^2, exp(i P) = f0 + f1 P + f2 P^2 with f = sum_k i^k / k! (a, b, c)_k. Where
// |P|_F > 4 the argument is halved h times, E_0 = exp(i P / 2^h), E_k = E_{k-1}^2.
// VJP (torch's convention, dL = Re tr(G^dag dY)): G_h = G U^dag, back through the squarings
// G_{k-1} = G_k E_{k-1}^dag + E_{k-1}^dag G_k, then at Q = P / 2^h, with tau_j = tr(G_0^dag Q^j)
// and the differentiated series d f_j / d c0, d f_j / d c1 (dc0 = tr(Q^2 dQ), dc1 = tr(Q dQ)):
//   Gamma = beta_0 Q^2 + beta_1 Q + conj(f1) G_0 + conj(f2) (G_0 Q + Q G_0),
//   beta_i = Re sum_j tau_j d f_j / d c_i,   grad P = 2^-h (hermitian traceless part of Gamma),
//   grad X = -i grad P,   grad U = E^dag G + grad X S^dag,   grad S = U^dag grad X.
// Only the hermitian traceless part of Gamma reaches X (TH projects onto it).

// c = op(a) op(b) for 3 x 3 complex matrices as (re[9], im[9]) in double
template <bool DA, bool DB>
inline void mul3(const double* ar, const double* ai, const double* br, const double* bi, double* cr, double* ci) {
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      double re = 0, im = 0;
      for (int k = 0; k < 3; ++k) {
        const int ia = DA ? k * 3 + i : i * 3 + k, ib = DB ? j * 3 + k : k * 3 + j;
        const double xr = ar[ia], xi = DA ? -ai[ia] : ai[ia];
        const double yr = br[ib], yi = DB ? -bi[ib] : bi[ib];
        re += xr * yr - xi * yi;
        im += xr * yi + xi * yr;
      }
      cr[i * 3 + j] = re;
      ci[i * 3 + j] = im;
    }
}

template <typename T>
inline void load3(const T* p, double* re, double* im) {
  for (int e = 0; e < 9; ++e) { re[e] = p[2 * e]; im[e] = p[2 * e + 1]; }
}

template <typename T>
inline void store3(const double* re, const double* im, T* p) {
  for (int e = 0; e < 9; ++e) { p[2 * e] = static_cast<T>(re[e]); p[2 * e + 1] = static_cast<T>(im[e]); }
}

// f_j = (fr[j], fi[j]); with DERIV also d f_j / d c0 = (d0r, d0i)[j] and d f_j / d c1 = (d1r, d1i)[j].
// Cut where the next term's bound (k + 1) R^k / k!, R = max(r, 1), is below 1e-17 (the
// derivatives' terms are bounded by k R^k / k!); at most kMaxTerms terms (NaN, inf).
template <bool DERIV>
inline void su3_exp_coefficients(double c0, double c1, double r, double* fr, double* fi, double* d0r, double* d0i,
                                 double* d1r, double* d1i) {
  double a = 1, b = 0, c = 0, a0 = 0, b0 = 0, cc0 = 0, a1 = 0, b1 = 0, cc1 = 0;
  for (int j = 0; j < 3; ++j) fr[j] = fi[j] = 0;
  if (DERIV)
    for (int j = 0; j < 3; ++j) d0r[j] = d0i[j] = d1r[j] = d1i[j] = 0;
  const double big = std::max(r, 1.0);
  double coeff = 1, rk = 1;  // 1 / k!, R^k
  for (int k = 0;;) {
    const double w = (k % 4 == 0 || k % 4 == 1) ? coeff : -coeff;  // i^k / k! = w (k even) or i w (k odd)
    double* f = (k % 2 == 0) ? fr : fi;
    f[0] += w * a; f[1] += w * b; f[2] += w * c;
    if (DERIV) {
      double* g0 = (k % 2 == 0) ? d0r : d0i;
      double* g1 = (k % 2 == 0) ? d1r : d1i;
      g0[0] += w * a0; g0[1] += w * b0; g0[2] += w * cc0;
      g1[0] += w * a1; g1[1] += w * b1; g1[2] += w * cc1;
    }
    ++k;
    coeff /= k;
    rk *= big;
    if ((coeff * rk * (k + 1) < 1e-17 && k > 3) || k >= kMaxTerms) break;
    // (a, b, c) -> (c c0, a + c c1, b) and its derivatives by c0 and c1
    if (DERIV) {
      const double na0 = cc0 * c0 + c, nb0 = a0 + cc0 * c1;
      const double na1 = cc1 * c0, nb1 = a1 + cc1 * c1 + c;
      cc0 = b0; a0 = na0; b0 = nb0;
      cc1 = b1; a1 = na1; b1 = nb1;
    }
    const double na = c * c0, nb = a + c * c1;
    c = b; a = na; b = nb;
  }
}

// The forward pieces of one link: Q = -TH(U S) / 2^h and Q^2, c0, c1, r of Q, h, and
// E_0 = exp(i Q) (with the coefficients f_j), E_k = E_{k-1}^2 into chain[k] (k = 0..h; chain[h] = E)
struct Su3Stout {
  double qr[9], qi[9], q2r[9], q2i[9], c0, c1, r;
  double fr[3], fi[3];
  double d0r[3], d0i[3], d1r[3], d1i[3];  // d f_j / d c0, d f_j / d c1 (filled by the VJP's forward pass)
  int h;
};

constexpr int kMaxStoutHalvings = 64;  // |P|_F up to 4 2^64: beyond, a link is noise either way

// DERIV: also the series' derivatives (the VJP), summed in the same loop as the f_j
template <bool DERIV>
inline void su3_stout_forward(const double* ur, const double* ui, const double* sr, const double* si, Su3Stout& st,
                              double (*chain_r)[9], double (*chain_i)[9]) {
  double xr[9], xi[9];
  mul3<false, false>(ur, ui, sr, si, xr, xi);
  // P = -TH(X): P_ij = -(Im X_ij + Im X_ji) / 2 - i (Re X_ji - Re X_ij) / 2, trace removed
  double trace = (xi[0] + xi[4] + xi[8]) / 3.0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      st.qr[i * 3 + j] = -0.5 * (xi[i * 3 + j] + xi[j * 3 + i]) + (i == j ? trace : 0.0);
      st.qi[i * 3 + j] = -0.5 * (xr[j * 3 + i] - xr[i * 3 + j]);
    }
  double norm2 = 0;
  for (int e = 0; e < 9; ++e) norm2 += st.qr[e] * st.qr[e] + st.qi[e] * st.qi[e];
  st.h = 0;
  while (norm2 > 16.0 && st.h < kMaxStoutHalvings) { norm2 *= 0.25; ++st.h; }
  if (st.h)
    for (int e = 0; e < 9; ++e) { st.qr[e] = std::ldexp(st.qr[e], -st.h); st.qi[e] = std::ldexp(st.qi[e], -st.h); }
  mul3<false, false>(st.qr, st.qi, st.qr, st.qi, st.q2r, st.q2i);
  st.c1 = 0.5 * (st.q2r[0] + st.q2r[4] + st.q2r[8]);
  double c0 = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) c0 += st.qr[i * 3 + j] * st.q2r[j * 3 + i] - st.qi[i * 3 + j] * st.q2i[j * 3 + i];
  st.c0 = c0 / 3.0;
  st.r = std::sqrt(2.0 * std::max(st.c1, 0.0));
  su3_exp_coefficients<DERIV>(st.c0, st.c1, st.r, st.fr, st.fi, st.d0r, st.d0i, st.d1r, st.d1i);
  double* er = chain_r[0];
  double* ei = chain_i[0];
  for (int e = 0; e < 9; ++e) {
    er[e] = st.fr[1] * st.qr[e] - st.fi[1] * st.qi[e] + st.fr[2] * st.q2r[e] - st.fi[2] * st.q2i[e];
    ei[e] = st.fr[1] * st.qi[e] + st.fi[1] * st.qr[e] + st.fr[2] * st.q2i[e] + st.fi[2] * st.q2r[e];
  }
  for (int i = 0; i < 3; ++i) { er[4 * i] += st.fr[0]; ei[4 * i] += st.fi[0]; }
  for (int k = 1; k <= st.h; ++k)
    mul3<false, false>(chain_r[k - 1], chain_i[k - 1], chain_r[k - 1], chain_i[k - 1], chain_r[k], chain_i[k]);
}

// exp(i P) W, W = target (target == links: a stout layer), as su2_stout_update_impl
template <typename T>
void su3_stout_update_impl(const T* links, const T* staple, const T* target, T* out, int64_t count) {
  at::parallel_for(0, count, 64, [&](int64_t begin, int64_t end) {
    double chain_r[kMaxStoutHalvings + 1][9], chain_i[kMaxStoutHalvings + 1][9];
    for (int64_t m = begin; m < end; ++m) {
      double ur[9], ui[9], sr[9], si[9], wr[9], wi[9], yr[9], yi[9];
      load3(links + 18 * m, ur, ui);
      load3(staple + 18 * m, sr, si);
      load3(target + 18 * m, wr, wi);
      Su3Stout st;
      su3_stout_forward<false>(ur, ui, sr, si, st, chain_r, chain_i);
      mul3<false, false>(chain_r[st.h], chain_i[st.h], wr, wi, yr, yi);
      store3(yr, yi, out + 18 * m);
    }
  });
}

// grad_target == nullptr: target is links, its gradient is added into grad_links
template <typename T>
void su3_stout_update_vjp_impl(const T* links, const T* staple, const T* target, const T* grad, T* grad_links,
                               T* grad_staple, T* grad_target, int64_t count) {
  at::parallel_for(0, count, 64, [&](int64_t begin, int64_t end) {
    double chain_r[kMaxStoutHalvings + 1][9], chain_i[kMaxStoutHalvings + 1][9];
    for (int64_t m = begin; m < end; ++m) {
      double ur[9], ui[9], sr[9], si[9], wr[9], wi[9], gr[9], gi[9];
      load3(links + 18 * m, ur, ui);
      load3(staple + 18 * m, sr, si);
      load3(target + 18 * m, wr, wi);
      load3(grad + 18 * m, gr, gi);
      Su3Stout st;
      su3_stout_forward<true>(ur, ui, sr, si, st, chain_r, chain_i);
      double gur[9], gui[9], ger[9], gei[9], tr_[9], ti_[9], t2r[9], t2i[9];
      mul3<true, false>(chain_r[st.h], chain_i[st.h], gr, gi, gur, gui);  // E^dag G: grad W
      if (grad_target != nullptr) {
        store3(gur, gui, grad_target + 18 * m);
        for (int e = 0; e < 9; ++e) gur[e] = gui[e] = 0;
      }
      mul3<false, true>(gr, gi, wr, wi, ger, gei);  // G_h = G W^dag
      for (int k = st.h; k >= 1; --k) {                                    // back through E_k = E_{k-1}^2
        mul3<false, true>(ger, gei, chain_r[k - 1], chain_i[k - 1], tr_, ti_);
        mul3<true, false>(chain_r[k - 1], chain_i[k - 1], ger, gei, t2r, t2i);
        for (int e = 0; e < 9; ++e) { ger[e] = tr_[e] + t2r[e]; gei[e] = ti_[e] + t2i[e]; }
      }
      // tau_j = tr(G_0^dag Q^j) = sum_ab conj(G_ab) (Q^j)_ab
      double tau_r[3] = {0, 0, 0}, tau_i[3] = {0, 0, 0};
      for (int i = 0; i < 3; ++i) { tau_r[0] += ger[4 * i]; tau_i[0] -= gei[4 * i]; }
      for (int e = 0; e < 9; ++e) {
        tau_r[1] += ger[e] * st.qr[e] + gei[e] * st.qi[e];
        tau_i[1] += ger[e] * st.qi[e] - gei[e] * st.qr[e];
        tau_r[2] += ger[e] * st.q2r[e] + gei[e] * st.q2i[e];
        tau_i[2] += ger[e] * st.q2i[e] - gei[e] * st.q2r[e];
      }
      const double *fr = st.fr, *fi = st.fi;
      double beta0 = 0, beta1 = 0;
      for (int j = 0; j < 3; ++j) {
        beta0 += tau_r[j] * st.d0r[j] - tau_i[j] * st.d0i[j];
        beta1 += tau_r[j] * st.d1r[j] - tau_i[j] * st.d1i[j];
      }
      // Gamma = beta0 Q^2 + beta1 Q + conj(f1) G_0 + conj(f2) (G_0 Q + Q G_0)
      double gqr[9], gqi[9], qgr[9], qgi[9], gamr[9], gami[9];
      mul3<false, false>(ger, gei, st.qr, st.qi, gqr, gqi);
      mul3<false, false>(st.qr, st.qi, ger, gei, qgr, qgi);
      for (int e = 0; e < 9; ++e) {
        const double sr2 = gqr[e] + qgr[e], si2 = gqi[e] + qgi[e];
        gamr[e] = beta0 * st.q2r[e] + beta1 * st.qr[e] + fr[1] * ger[e] + fi[1] * gei[e] + fr[2] * sr2 + fi[2] * si2;
        gami[e] = beta0 * st.q2i[e] + beta1 * st.qi[e] + fr[1] * gei[e] - fi[1] * ger[e] + fr[2] * si2 - fi[2] * sr2;
      }
      // grad P = 2^-h herm. traceless part of Gamma; grad X = -i grad P
      const double scale = std::ldexp(1.0, -st.h);
      const double trace = (gamr[0] + gamr[4] + gamr[8]) / 3.0;
      double gxr[9], gxi[9];
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
          const double hr = 0.5 * (gamr[i * 3 + j] + gamr[j * 3 + i]) - (i == j ? trace : 0.0);
          const double hi = 0.5 * (gami[i * 3 + j] - gami[j * 3 + i]);
          gxr[i * 3 + j] = scale * hi;   // -i (hr + i hi) = hi - i hr
          gxi[i * 3 + j] = -scale * hr;
        }
      mul3<false, true>(gxr, gxi, sr, si, tr_, ti_);  // grad X S^dag
      for (int e = 0; e < 9; ++e) { gur[e] += tr_[e]; gui[e] += ti_[e]; }
      store3(gur, gui, grad_links + 18 * m);
      mul3<true, false>(ur, ui, gxr, gxi, tr_, ti_);  // U^dag grad X
      store3(tr_, ti_, grad_staple + 18 * m);
    }
  });
}

// the SU(N) stout update (N = 2, 3) exp(-i TH(U S)) W of links U, staples S and rotated links W
// (target; nullptr: W = U) of one shape, or its VJP (grad != nullptr): {grad U, grad S} where
// W = U, {grad U, grad S, grad W} otherwise
template <typename T, int N>
std::vector<torch::Tensor> stout_dispatch(const torch::Tensor& links, const torch::Tensor& staple,
                                          const torch::Tensor* target, const torch::Tensor* grad) {
  const int64_t count = links.numel() / (N * N);
  const T* l = reinterpret_cast<const T*>(links.data_ptr());
  const T* st = reinterpret_cast<const T*>(staple.data_ptr());
  const T* w = target == nullptr ? l : reinterpret_cast<const T*>(target->data_ptr());
  if (grad == nullptr) {
    auto out = torch::empty_like(links);
    T* o = reinterpret_cast<T*>(out.data_ptr());
    if constexpr (N == 2) su2_stout_update_impl<T>(l, st, w, o, count);
    else su3_stout_update_impl<T>(l, st, w, o, count);
    return {out};
  }
  std::vector<torch::Tensor> grads = {torch::empty_like(links), torch::empty_like(links)};
  if (target != nullptr) grads.push_back(torch::empty_like(links));
  const T* g = reinterpret_cast<const T*>(grad->data_ptr());
  T* pl = reinterpret_cast<T*>(grads[0].data_ptr());
  T* ps = reinterpret_cast<T*>(grads[1].data_ptr());
  T* pw = target == nullptr ? nullptr : reinterpret_cast<T*>(grads[2].data_ptr());
  if constexpr (N == 2) su2_stout_update_vjp_impl<T>(l, st, w, g, pl, ps, pw, count);
  else su3_stout_update_vjp_impl<T>(l, st, w, g, pl, ps, pw, count);
  return grads;
}

std::vector<torch::Tensor> stout_call(torch::Tensor links, torch::Tensor staple, const torch::Tensor* target,
                                      const torch::Tensor* grad, int64_t n) {
  const char* name = target != nullptr ? "stout_rotate" : n == 2 ? "su2_stout_update" : "su3_stout_update";
  check(links, "links"); check(staple, "staple");
  TORCH_CHECK(n == 2 || n == 3, name, ": N = ", n, "; allowed: 2, 3");
  TORCH_CHECK(links.dim() >= 2 && links.size(-1) == n && links.size(-2) == n, name, ": links must be [..., ", n, ", ",
              n, "]");
  for (const torch::Tensor* t : std::initializer_list<const torch::Tensor*>{&staple, target, grad}) {
    if (t == nullptr) continue;
    check(*t, "operand");
    TORCH_CHECK(t->sizes() == links.sizes() && t->scalar_type() == links.scalar_type(), name,
                ": every operand must have the links' shape and dtype");
  }
  const bool is_double = links.scalar_type() == at::kComplexDouble;
  TORCH_CHECK(is_double || links.scalar_type() == at::kComplexFloat, name, ": dtype must be complex64 or complex128");
  if (n == 2)
    return is_double ? stout_dispatch<double, 2>(links, staple, target, grad)
                     : stout_dispatch<float, 2>(links, staple, target, grad);
  return is_double ? stout_dispatch<double, 3>(links, staple, target, grad)
                   : stout_dispatch<float, 3>(links, staple, target, grad);
}

torch::Tensor su2_stout_update(torch::Tensor links, torch::Tensor staple) {
  return stout_call(links, staple, nullptr, nullptr, 2)[0];
}

std::vector<torch::Tensor> su2_stout_update_vjp(torch::Tensor links, torch::Tensor staple, torch::Tensor grad) {
  return stout_call(links, staple, nullptr, &grad, 2);
}

torch::Tensor su3_stout_update(torch::Tensor links, torch::Tensor staple) {
  return stout_call(links, staple, nullptr, nullptr, 3)[0];
}

std::vector<torch::Tensor> su3_stout_update_vjp(torch::Tensor links, torch::Tensor staple, torch::Tensor grad) {
  return stout_call(links, staple, nullptr, &grad, 3);
}

torch::Tensor stout_rotate(torch::Tensor links, torch::Tensor staple, torch::Tensor target) {
  return stout_call(links, staple, &target, nullptr, links.size(-1))[0];
}

std::vector<torch::Tensor> stout_rotate_vjp(torch::Tensor links, torch::Tensor staple, torch::Tensor target,
                                            torch::Tensor grad) {
  return stout_call(links, staple, &target, &grad, links.size(-1));
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("gauge_force", &gauge_force, "beta/(2N) TA(U A) of the Wilson gauge action, [B, d, V, N, N]");
  m.def("gauge_force_rows", &gauge_force_rows, "gauge_force on [B, d, rows, L, N, N], L a multiple of 8");
  m.def("su3_exp_update", &su3_exp_update, "exp(i eps P) U for SU(3), [..., 3, 3]");
  m.def("staggered_hop", &staggered_hop, "staggered hopping term, [B, V, N]");
  m.def("wilson_hop", &wilson_hop, "Wilson hopping term with spin projection, [B, V, 4, N]");
  m.def("u1_stout_forward", &u1_stout_forward, "U(1) masked stout stack: (y, cos A, sin A, log det), [B, d, V]");
  m.def("u1_stout_vjp", &u1_stout_vjp, "U(1) masked stout stack: vector-Jacobian product, [B, d, V]");
  m.def("plaquette_staple", &plaquette_staple, "plaquette staple sum A_mu(x) (U A closes the loops), [B, d, V, N, N]");
  m.def("plaquette_staple_vjp", &plaquette_staple_vjp, "vector-Jacobian product of plaquette_staple, [B, d, V, N, N]");
  m.def("polyakov_staples", &polyakov_staples, "Polyakov-line staples S_mu(x) (U S is the line through x), [B, d, V, N, N]");
  m.def("polyakov_staples_vjp", &polyakov_staples_vjp, "vector-Jacobian product of polyakov_staples, [B, d, V, N, N]");
  m.def("su2_stout_update", &su2_stout_update, "SU(2) stout update exp(-i TH(U S)) U, [..., 2, 2]");
  m.def("su2_stout_update_vjp", &su2_stout_update_vjp, "its vector-Jacobian product: (grad U, grad S)");
  m.def("su3_stout_update", &su3_stout_update, "SU(3) stout update exp(-i TH(U S)) U, [..., 3, 3]");
  m.def("su3_stout_update_vjp", &su3_stout_update_vjp, "its vector-Jacobian product: (grad U, grad S)");
  m.def("stout_rotate", &stout_rotate, "exp(-i TH(U S)) W for SU(2)/SU(3) (CASK's attention), [..., N, N]");
  m.def("stout_rotate_vjp", &stout_rotate_vjp, "its vector-Jacobian product: (grad U, grad S, grad W)");
  m.def("small_matmul", &small_matmul, "op(a) op(b) for [..., N, N] complex, N = 2, 3; op: identity or adjoint");
}
