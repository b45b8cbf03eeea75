"""Which path each compiled kernel takes in this process (``lqcdml devices``); builds nothing."""

from __future__ import annotations

import os
import shutil
from typing import Any

from . import build, dispatch

#: kernel -> what it computes (all: CPU tensors with no autograd graph to record; CUDA tensors
#: and everything else run the torch reference)
KERNELS = {
    "gauge_force": "Wilson gauge force beta/(2N) TA(U A); SU(2)/SU(3) links [B, d, L..., N, N]",
    "staggered_hop": "staggered hopping term H psi; SU(2)/SU(3), psi [B, L..., N]",
    "wilson_hop": "Wilson hopping term, spin projected; 4D, SU(2)/SU(3), psi [B, L..., 4, N]",
    "su3_exp_update": "SU(3) link update exp(i eps P) U; links and momenta [..., 3, 3]",
    "u1_stout": "U(1) masked stout stack and its VJP (field-transformed HMC's force); angles [B, d, L...]",
    "small_matmul": "products of 2 x 2 / 3 x 3 complex matrices with their backward (stout and CASK networks)",
    "plaquette_staple": "plaquette staple sum and its VJP (stout layers); SU(2)/SU(3) links [B, d, L..., N, N]",
    "polyakov_staples": "Polyakov-line staples and their VJP (stout layers); SU(2)/SU(3) links [B, d, L..., N, N]",
    "su2_stout_update": "SU(2) stout update exp(-i TH(U S)) U and its VJP (stout layers); [..., 2, 2]",
    "su3_stout_update": "SU(3) stout update exp(-i TH(U S)) U and its VJP (stout layers); [..., 3, 3]",
    "stout_rotation": "exp(-i TH(U S)) W and its VJP (CASK's attention update); SU(2)/SU(3) [..., N, N]",
}
SCOPE = "CPU complex64/complex128 tensors, no autograd graph; CUDA tensors and the rest: torch"
#: the kernels on real tensors, and their scope
SCOPES = {
    "u1_stout": "CPU float32/float64 tensors, no autograd graph; CUDA tensors and the rest: torch",
    "small_matmul": "CPU complex64/complex128 tensors of one shape, autograd included; the rest: torch",
    "plaquette_staple": "CPU complex64/complex128 links, autograd included (first derivatives); the rest: torch",
    "polyakov_staples": "CPU complex64/complex128 links, autograd included (first derivatives); the rest: torch",
    "su2_stout_update": "CPU complex64/complex128 tensors of one shape, autograd included (first derivatives); the rest: torch",
    "su3_stout_update": "CPU complex64/complex128 tensors of one shape, autograd included (first derivatives); the rest: torch",
    "stout_rotation": "CPU complex64/complex128 tensors of one shape, autograd included (first derivatives); the rest: torch",
}


def cpu_path() -> tuple[str, str]:
    """(``compiled`` or ``torch``, why) for the calls the kernels take."""
    if dispatch.mode() == "torch":
        return "torch", "disabled by LQCDML_KERNELS=torch"
    if not build.cpu_supported():
        return "torch", dispatch.CPU_REASON
    if build.built_library() is not None:
        try:
            module = dispatch.extension()
        except RuntimeError:
            module = None
        if module is not None:
            return "compiled", "built"
        return "torch", f"the build does not load ({dispatch.reason()})"
    failed = dispatch.reason()
    if failed:
        return "torch", failed
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return "torch", f"not built, and no C++ compiler ({compiler}) to build it on first use"
    return "compiled", "not built yet: the first call builds it once (about a minute)"


def report() -> dict[str, Any]:
    """Mode, instruction set, build folder and tag, and each kernel's path and scope."""
    path, why = cpu_path()
    return {
        "mode": dispatch.mode(),
        "arch": build.arch(),
        "tag": build.tag(),
        "directory": str(build.build_directory()),
        "built": build.built_library() is not None,
        "paths": {
            name: {"path": path, "why": why, "computes": text, "takes": SCOPES.get(name, SCOPE)}
            for name, text in KERNELS.items()
        },
    }
