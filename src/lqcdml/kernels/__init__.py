"""Compiled CPU kernels for the lattice hot spots, with the pure-torch code as reference.

Three kernels (``csrc/lattice_kernels.cpp``, C++ through torch's extension tools, SIMD
over blocks of sites, threads from ATen's pool so ``torch.set_num_threads`` applies):

- ``gauge_force``: the Wilson gauge force ``beta / (2N) TA(U_mu A_mu)`` of SU(2)/SU(3);
- ``staggered_hop``: the staggered hopping term ``H psi``;
- ``wilson_hop``: the Wilson hopping term with spin projection (two colour products per
  direction instead of four), 4D.

The extension is built by the install (``python -m lqcdml.kernels.build``, called by the
Makefile) into the virtual environment. The theories call these functions only through
``enabled(...)``: CPU tensors of complex64/complex128 with no autograd graph to record,
N in {2, 3}, and ``LQCDML_KERNELS`` not ``torch``. Everything else (CUDA, autograd,
other N, U(1)) runs the torch reference, which stays the definition of each operator.

``LQCDML_KERNELS``: ``auto`` (default; use the extension when it is built), ``torch``
(never), ``extension`` (require it: a missing build is an error, not a fallback).
"""

from __future__ import annotations

from .dispatch import enabled, extension, geometry, mode
from .ops import gauge_force, staggered_hop, su3_exp_update, wilson_hop

__all__ = ["enabled", "extension", "geometry", "mode", "gauge_force", "staggered_hop", "su3_exp_update",
           "wilson_hop"]
