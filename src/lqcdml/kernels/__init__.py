"""Compiled CPU kernels for the lattice hot spots, with the pure-torch code as reference.

Eleven kernels (``csrc/lattice_kernels.cpp``, C++ through torch's extension tools, SIMD
over blocks of sites, threads from ATen's pool so ``torch.set_num_threads`` applies):

- ``gauge_force``: the Wilson gauge force ``beta / (2N) TA(U_mu A_mu)`` of SU(2)/SU(3),
  links ``[B, d, L..., N, N]`` (``WilsonGaugeAction.force``);
- ``plaquette_staple``: the plaquette staple sum ``S_mu(x)`` of ``nn.gauge_loops`` and its
  vector-Jacobian product, an autograd function (the plaquette term of a stout layer);
- ``polyakov_staples``: the Polyakov-line staples of every direction and their
  vector-Jacobian product, an autograd function (the Polyakov term of a stout layer);
- ``staggered_hop``: the staggered hopping term ``H psi`` of SU(2)/SU(3), ``psi [B, L..., N]``
  (``StaggeredOperator.hop``);
- ``wilson_hop``: the Wilson hopping term with spin projection (two colour products per
  direction instead of four), 4D, SU(2)/SU(3), ``psi [B, L..., 4, N]`` (``WilsonOperator.hop``);
- ``su2_stout_update``: the SU(2) stout update ``exp(-i TH(U S)) U`` and its vector-Jacobian
  product in closed form, an autograd function (``nn.stout.stout_update``);
- ``su3_exp_update``: the SU(3) link update ``exp(i eps P) U`` (``SU(3).update``);
- ``su3_stout_update``: the SU(3) stout update and its vector-Jacobian product, by the
  Cayley-Hamilton series of ``SU(3).expi`` and its derivative, an autograd function
  (``nn.stout.stout_update``);
- ``stout_rotation``: either update applied to another link, ``exp(-i TH(U^V S)) U`` (CASK's
  attention), with its vector-Jacobian product;
- ``u1_stout_forward`` / ``u1_stout_vjp``: a stack of U(1) masked stout layers and its
  vector-Jacobian product, the pulled-back force of field-transformed HMC
  (``nn.masked_stout.U1MaskedStoutFlow.pullback_force``), angles ``[B, d, L...]``;
- ``small_matmul``: batched products of 2 x 2 / 3 x 3 complex matrices, behind ``matmul``,
  an autograd function whose backward is the same kernel: the products of the gauge-covariant
  networks (stout, CASK) in their forward pass and their vector-Jacobian product.

The theories call them only through ``enabled(...)``: CPU tensors of complex64 or
complex128 with no autograd graph to record, N in {2, 3}, and ``LQCDML_KERNELS`` not
``torch`` (``enabled_angles(...)`` for U(1) angles: float32 or float64). Everything else (CUDA
tensors, autograd, other N) runs the torch reference, which stays the definition of each
operator.

Build: ``make`` runs ``python -m lqcdml.kernels.build``; an install without it (``pip
install .``, a wheel) builds on the first call ``enabled`` admits, once, with one line on
stderr; a failed build means the torch path, with one line saying why. Where the builds
live (``LQCDML_KERNEL_DIR``, the environment, the user's cache) and which ones a build
removes: ``build``. ``lqcdml devices`` reports each kernel's path (``report``).

``LQCDML_KERNELS``: ``auto`` (default; use the extension, building it on first use),
``torch`` (never), ``extension`` (require it: a build that fails is an error, not a fallback).
"""

from __future__ import annotations

from .dispatch import enabled, enabled_angles, enabled_differentiable, extension, geometry, mode
from .ops import (
    gauge_force,
    matmul,
    plaquette_staple,
    polyakov_staples,
    staggered_hop,
    stout_rotation,
    su2_stout_update,
    su3_exp_update,
    su3_stout_update,
    u1_stout_forward,
    u1_stout_vjp,
    wilson_hop,
)

__all__ = [
    "enabled",
    "enabled_angles",
    "enabled_differentiable",
    "extension",
    "gauge_force",
    "geometry",
    "matmul",
    "mode",
    "plaquette_staple",
    "polyakov_staples",
    "staggered_hop",
    "stout_rotation",
    "su2_stout_update",
    "su3_exp_update",
    "su3_stout_update",
    "u1_stout_forward",
    "u1_stout_vjp",
    "wilson_hop",
]
