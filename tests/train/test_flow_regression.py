"""Regression of the flows under the transform contract: training trajectories,
samples, log-densities, flow-MCMC chains and the evaluation of the phi^4 affine flow (site-list
and masked couplings, float64 and float32) and the 2D U(1) flows (gauge-equivariant couplings,
plaquette coupling with sink partners).

``RECORDED`` was produced by running ``_run`` below (the same code, through the public API)
on the code *before* the transform contract (``nn.transform``, ``nn.prior``, priors declaring
the field dtype) was introduced: git commit 9d7fe27 plus the working tree of that day, on the
CPU, with 1 and with 2 torch threads (identical values), and printed with ``repr`` (exact
float64 round trip). The numbers are exact on that machine's CPU kernels; another CPU
(instruction set, BLAS / oneDNN build) sums in another order and rounds differently, by an
ulp per operation, which 4 optimiser steps, sampling and a chain amplify (measured on a second
CPU, 2026-12-07: at most 3e-14 of a list's scale in float64, 3e-6 in float32). So each list is
compared to its recording within ``REL_TOL`` of the dtype times the list's largest magnitude:
four decades above rounding, far below what any change of the computed function moves.
"""

from __future__ import annotations

import pytest
import torch

from lqcdml.lattice import U1, make_generators
from lqcdml.nn import phi4_flow, u1_flow, u1_plaquette_flow
from lqcdml.samplers import FlowMCMC
from lqcdml.theories import Phi4Action, WilsonGaugeAction
from lqcdml.train import FlowTrainer, evaluate_flow


def _chain_sums(t: torch.Tensor) -> list[float]:
    """Per configuration: the sum of the field and its sum weighted by ``cos(flat index)``."""
    t = t.detach().double().reshape(t.shape[0], -1)
    w = torch.cos(torch.arange(t.shape[1], dtype=torch.float64))
    return [float(v) for v in t.sum(1)] + [float(v) for v in t @ w]


def _floats(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.detach()]


def _run(build, action, dtype: torch.dtype, grad_clip: float) -> dict:
    """4 training steps, 3 samples and their densities, a 4-chain flow-MCMC start and 3 steps in
    float64, and a 200-sample evaluation."""
    torch.manual_seed(11)
    model = build().to(dtype)
    trainer = FlowTrainer(model, action, steps=4, batch=6, lr=1e-2, seed=5, grad_clip=grad_clip)
    for _ in range(4):
        trainer.step()
    out = {k: list(v) for k, v in trainer.history.items()}
    out["params"] = [float(sum(p.detach().double().sum() for p in model.parameters()))]
    x, log_q = model.sample(3, torch.Generator().manual_seed(9))
    out["sample"] = _chain_sums(x)
    out["sample_log_q"] = _floats(log_q)
    out["log_prob"] = _floats(model.log_prob(x.detach()))
    sampler = FlowMCMC(model.double().eval().requires_grad_(False), action)
    state = sampler.start(make_generators(3, 4))
    rec = {"start": _chain_sums(state.fields), "lw": _floats(state.extra["log_weight"])}
    for _ in range(3):
        state, info = sampler.step(state)
    rec["fields"] = _chain_sums(state.fields)
    rec["log_weight"] = _floats(state.extra["log_weight"])
    rec["delta_H"] = _floats(info.delta_H)
    out["mcmc"] = rec
    quality = evaluate_flow(model, action, 200, 4)
    out["eval"] = {k: quality[k] for k in ("ess", "acceptance", "mean_log_weight")}
    return out


PHI4 = Phi4Action(m2=-4.0, lam=8.0).action
U1_ACTION = WilsonGaugeAction(2.0, U1()).action
RUNS = {
    "phi4_fast_f64": (lambda: phi4_flow((4, 4), n_layers=2, hidden=(4,)), PHI4, torch.float64, 0.0),
    "phi4_masked_f64": (lambda: phi4_flow((4, 4), n_layers=2, hidden=(4,), fast=False), PHI4, torch.float64, 0.0),
    "phi4_fast_f32": (lambda: phi4_flow((4, 4), n_layers=2, hidden=(4,)), PHI4, torch.float32, 0.0),
    "u1_equivariant_f64": (lambda: u1_flow((4, 4), n_layers=2, hidden=(4,), n_mix=2), U1_ACTION, torch.float64, 1.0),
    "u1_plaquette_f64": (
        lambda: u1_plaquette_flow((4, 4), n_layers=2, hidden=(4,), n_mix=2, n_partners=2, partner_hidden=(4,)),
        U1_ACTION,
        torch.float64,
        1.0,
    ),
}


#: tolerance per training dtype, relative to a recorded list's largest magnitude (module docstring)
REL_TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def _assert_close(got, want, tol: float, where: str) -> None:
    """``got`` equal to ``want`` (nested dicts of floats and lists of floats) within ``tol`` times
    each list's largest magnitude (a float's own); the same keys and lengths."""
    if isinstance(want, float):
        got, want = [got], [want]
    if isinstance(want, dict):
        assert set(got) >= set(want), (where, sorted(set(want) - set(got)))
        for key in want:
            _assert_close(got[key], want[key], tol, f"{where}/{key}")
        return
    assert len(got) == len(want), (where, len(got), len(want))
    scale = max(abs(v) for v in want)
    worst = max(abs(g - w) for g, w in zip(got, want))
    assert worst <= tol * scale, (where, worst / scale, got, want)


@pytest.mark.parametrize("name", list(RUNS))
def test_flows_reproduce_the_recorded_numbers(name):
    got = _run(*RUNS[name])
    _assert_close(got, RECORDED[name], REL_TOL[RUNS[name][2]], name)


# fmt: off
RECORDED = {'phi4_fast_f64': {'loss': [141.10234302311184, 72.33930022606638, 99.97464683071227, 127.32506962239789],
                   'ess': [0.1666702021125079, 0.1666666666666723, 0.16666666666666666, 0.16666666696664692],
                   'lr': [0.01, 0.0086087572106361, 0.00525, 0.0018912427893638996],
                   'grad_norm': [738.5942928949158, 398.3366110933243, 511.7481900781533, 645.3013115394834],
                   'params': [-0.4989731521369404],
                   'sample': [-0.840601442086192,
                              5.182918829183332,
                              -0.5579523586214536,
                              2.073816981351475,
                              2.9840924466097216,
                              -4.775280843843905],
                   'sample_log_q': [-14.157914093566028, -17.964999487025352, -22.406997031281804],
                   'log_prob': [-14.157914093566028, -17.964999487025352, -22.406997031281804],
                   'mcmc': {'start': [0.7216151372693207,
                                      1.0994809541879413,
                                      5.367165724620559,
                                      -0.38309802050498787,
                                      -0.34174025633487315,
                                      -0.3138197845832109,
                                      1.297677025540915,
                                      2.105303200375877],
                            'lw': [-10.856737941456784,
                                   -32.02125856871214,
                                   -45.89342107895273,
                                   -167.30078968877578],
                            'fields': [0.7216151372693207,
                                       3.1562691596622714,
                                       8.766481789911655,
                                       0.9147828505800191,
                                       -0.34174025633487315,
                                       -0.01625885907641611,
                                       -1.2720252555514087,
                                       -0.09875650309932937],
                            'log_weight': [-10.856737941456784,
                                           -8.687813124404267,
                                           -42.011157018408824,
                                           -7.4136384219882245],
                            'delta_H': [154.3705956808839,
                                        74.18055814690702,
                                        24.86799462741743,
                                        104.85711956209136]},
                   'eval': {'ess': 0.0050902592567423875,
                            'acceptance': 0.020100502512562814,
                            'mean_log_weight': -112.66478046251657}},
 'phi4_masked_f64': {'loss': [141.10234302311184, 72.33930022606637, 99.97464683071225, 127.3250696223979],
                     'ess': [0.1666702021125079,
                             0.1666666666666723,
                             0.16666666666666666,
                             0.16666666696664692],
                     'lr': [0.01, 0.0086087572106361, 0.00525, 0.0018912427893638996],
                     'grad_norm': [738.5942928949158,
                                   398.3366110933243,
                                   511.7481900781533,
                                   645.3013115394834],
                     'params': [-0.49897315213694016],
                     'sample': [-0.8406014420861918,
                                5.182918829183332,
                                -0.557952358621453,
                                2.073816981351475,
                                2.9840924466097216,
                                -4.775280843843904],
                     'sample_log_q': [-14.157914093566028, -17.964999487025352, -22.406997031281804],
                     'log_prob': [-14.157914093566028, -17.964999487025356, -22.406997031281804],
                     'mcmc': {'start': [0.7216151372693205,
                                        1.099480954187941,
                                        5.367165724620559,
                                        -0.383098020504987,
                                        -0.3417402563348732,
                                        -0.3138197845832108,
                                        1.2976770255409154,
                                        2.1053032003758765],
                              'lw': [-10.856737941456776,
                                     -32.02125856871214,
                                     -45.89342107895269,
                                     -167.30078968877572],
                              'fields': [0.7216151372693205,
                                         3.156269159662271,
                                         8.766481789911655,
                                         0.9147828505800191,
                                         -0.3417402563348732,
                                         -0.016258859076416,
                                         -1.272025255551409,
                                         -0.09875650309932954],
                              'log_weight': [-10.856737941456776,
                                             -8.687813124404267,
                                             -42.011157018408824,
                                             -7.413638421988232],
                              'delta_H': [154.37059568088395,
                                          74.180558146907,
                                          24.86799462741743,
                                          104.85711956209138]},
                     'eval': {'ess': 0.0050902592567423875,
                              'acceptance': 0.020100502512562814,
                              'mean_log_weight': -112.66478046251657}},
 'phi4_fast_f32': {'loss': [270.4539794921875, 83.90243530273438, 121.13532257080078, 110.62637329101562],
                   'ess': [0.16666666666666666,
                           0.16666666666666666,
                           0.16666666666666666,
                           0.16666666666666666],
                   'lr': [0.01, 0.0086087572106361, 0.00525, 0.0018912427893638996],
                   'grad_norm': [1567.666748046875, 463.7213134765625, 680.6226196289062, 554.6123657226562],
                   'params': [-1.4052040675887838],
                   'sample': [-0.07981949858367443,
                              -5.49530802667141,
                              1.0664607882499695,
                              -0.01986177014004605,
                              -3.9414242503700496,
                              1.957551845643537],
                   'sample_log_q': [-21.535655975341797, -19.633798599243164, -19.21773338317871],
                   'log_prob': [-21.535655975341797, -19.633798599243164, -19.21773338317871],
                   'mcmc': {'start': [-0.6030517927066306,
                                      -0.3149739778539029,
                                      3.6856091452550706,
                                      -1.7484358508600855,
                                      -0.47687484694018384,
                                      -0.4591893820852705,
                                      1.2431373495960776,
                                      1.879114272653562],
                            'lw': [-6.635758063534208,
                                   -42.30555870627128,
                                   -28.42568794817957,
                                   -192.11237178975117],
                            'fields': [-0.6030517927066306,
                                       1.8399006740878368,
                                       3.6856091452550706,
                                       -0.3108786857466348,
                                       -0.47687484694018384,
                                       -0.18422611082173945,
                                       1.2431373495960776,
                                       -0.17796012586038923],
                            'log_weight': [-6.635758063534208,
                                           -5.811608949641068,
                                           -28.42568794817957,
                                           -4.732789145250317],
                            'delta_H': [198.86967255602679,
                                        75.2858142948714,
                                        36.75204932678747,
                                        63.73536846029281]},
                   'eval': {'ess': 0.005043577412807838,
                            'acceptance': 0.01507537688442211,
                            'mean_log_weight': -118.59096171433798}},
 'u1_equivariant_f64': {'loss': [-30.223485766818722,
                                 -25.435783409441893,
                                 -24.812713313510088,
                                 -26.21309087966846],
                        'ess': [0.1917788479151387,
                                0.4087736262016592,
                                0.3328358686605243,
                                0.27121010520829697],
                        'lr': [0.01, 0.0086087572106361, 0.00525, 0.0018912427893638996],
                        'grad_norm': [3.777929553072396,
                                      2.834485936170354,
                                      3.247774620411157,
                                      3.0972032435187278],
                        'params': [-4.022367918476824],
                        'sample': [-16.82253627288677,
                                   8.735797861652388,
                                   0.8098086604865888,
                                   10.981990862614529,
                                   -13.050639212648687,
                                   2.304753528164905],
                        'sample_log_q': [-59.00190625333917, -58.80740811813608, -58.83098220676438],
                        'log_prob': [-59.00190625333917, -58.80740811813608, -58.83098220676438],
                        'mcmc': {'start': [-4.993792986245202,
                                           -17.62916161878401,
                                           -8.404249684639003,
                                           -11.551483154735468,
                                           0.9721145904243427,
                                           -6.94027563343686,
                                           13.40856966230534,
                                           -4.196696515003652],
                                 'lw': [32.36440254020164,
                                        32.365049200808706,
                                        27.793181235381414,
                                        33.41194098842203],
                                 'fields': [3.963006173790693,
                                            -3.1694395330130787,
                                            -8.404249684639003,
                                            -14.52928997677466,
                                            4.266935883800053,
                                            1.9808076349591097,
                                            13.40856966230534,
                                            0.37288958301558317],
                                 'log_weight': [33.963824960768285,
                                                32.83222016508463,
                                                27.793181235381414,
                                                38.3660576789643],
                                 'delta_H': [3.0924318846231458,
                                             -0.46717096427592253,
                                             2.7418323834896476,
                                             -4.954116690542271]},
                        'eval': {'ess': 0.005275396874563679,
                                 'acceptance': 0.01507537688442211,
                                 'mean_log_weight': 27.990257022457598}},
 'u1_plaquette_f64': {'loss': [-30.20276545405862,
                               -26.26580642893885,
                               -26.51405763656781,
                               -28.382662805753245],
                      'ess': [0.1876683607916894,
                              0.49867087607820565,
                              0.2987715909557958,
                              0.2621504619102305],
                      'lr': [0.01, 0.0086087572106361, 0.00525, 0.0018912427893638996],
                      'grad_norm': [11.300248047213762,
                                    11.192845608955624,
                                    11.891382090496304,
                                    10.825818299613989],
                      'params': [-2.9411498772452136],
                      'sample': [-15.288517934287068,
                                 3.554933784844005,
                                 0.4201525457587785,
                                 0.6965696517560795,
                                 -7.170418844565181,
                                 2.735096663445819],
                      'sample_log_q': [-59.36345323793519, -57.9295562241023, -58.57928976788449],
                      'log_prob': [-59.36345323793519, -57.9295562241023, -58.57928976788449],
                      'mcmc': {'start': [-3.864856629230545,
                                         -11.714249565859758,
                                         -9.282118640660231,
                                         -10.230895382682466,
                                         0.30349445663937,
                                         -8.827820098249397,
                                         13.175192631717607,
                                         -4.308895870332498],
                               'lw': [34.17475323823909,
                                      34.6159589848678,
                                      28.63603309764557,
                                      36.70197781811673],
                               'fields': [4.183405819982223,
                                          -3.966156001598934,
                                          -9.282118640660231,
                                          -15.005028630266402,
                                          4.353998797477046,
                                          2.19990662442109,
                                          13.175192631717607,
                                          1.3487174400588597],
                               'log_weight': [35.015582511634136,
                                              34.358147915414065,
                                              28.63603309764557,
                                              40.33860789941586],
                               'delta_H': [1.7416824462733373,
                                           0.2578110694537372,
                                           2.426243992878849,
                                           -3.6366300812991312]},
                      'eval': {'ess': 0.0056420240051455565,
                               'acceptance': 0.01507537688442211,
                               'mean_log_weight': 30.179528640552444}}}
