# Shared settings: the experiment, its composed config (at parse time, to know the
# ensembles and replicas), code versions for rerun triggers, paths.
from pathlib import Path

import lqcdml
from lqcdml.cli.code_digest import source_digest
from lqcdml.config import SAMPLERS, compose_experiment

CONF_DIR = str(Path(workflow.basedir) / "conf")
CONF_ROOT = str(Path(CONF_DIR) / "config.yaml")
CONF_FILES = sorted(str(p) for p in Path(CONF_DIR).glob("*/*.yaml"))
SRC_DIR = Path(workflow.basedir) / "src" / "lqcdml"
EXPERIMENT = str(config.get("experiment", "quickstart"))
OVERRIDES = [str(o) for o in config.get("overrides", [])]
JOB_THREADS = int(config.get("job_threads", 1))
CFG = compose_experiment(EXPERIMENT, OVERRIDES, CONF_DIR)
RESULTS = CFG.paths.results
EXP_DIR = f"{RESULTS}/{EXPERIMENT}"
ENSEMBLES = sorted(CFG.ensembles)
GPU = 1 if CFG.device.startswith("cuda") else 0


def code_version(*modules, dispatchers=()):
    """lqcdml version and a hash of the source files the modules import (transitively)."""
    return source_digest(SRC_DIR, *modules, dispatchers=dispatchers, version=lqcdml.__version__)


# Rerun triggers (params.code): a digest of the files of the CLI module a rule's shell
# command runs and of every package module it imports, found by static analysis of
# SRC_DIR (lqcdml/cli/code_digest.py: also imports inside functions, and the packages'
# __init__.py). Every `lqcdml CMD` runs cli/main.py first; main.py counts for compose
# and generate as a dispatcher: its module-level imports are followed, not the lazy
# import of each subcommand inside run(), which would make the generate trigger the
# union of all subcommands (an edit in analysis/ would rerun every chain). measure,
# train and analyze leave main.py out; an edit of it reruns them anyway: it changes the
# compose trigger, and a recomposed config reruns every job below it in the same run.
MAIN = "lqcdml.cli.main"
COMPOSE_CODE = code_version(MAIN, "lqcdml.config", dispatchers=[MAIN])
GENERATE_CODE = code_version("lqcdml.cli.generate", MAIN, dispatchers=[MAIN])
MEASURE_CODE = code_version("lqcdml.cli.measure")
ANALYZE_CODE = code_version("lqcdml.cli.analyze")
TRAIN_CODE = code_version("lqcdml.cli.train")
ESTIMATE_CODE = code_version("lqcdml.cli.estimate")
# ensembles whose sampler uses a trained model (train rule, generate --model)
MODEL_ENSEMBLES = [e for e in ENSEMBLES if SAMPLERS.lookup(CFG.ensembles[e].sampler.name).needs_model]


def model_checkpoint(ens):
    return f"{EXP_DIR}/models/{ens}.pt"


def train_source(ens):
    """The ensemble a model trains on (train.source: SLHMC networks trained offline), or None."""
    return CFG.ensembles[ens].train.source or None


def train_inputs(wildcards):
    """The resolved config, and the finished chains of train.source where a model trains on them."""
    inputs = {"config": f"{EXP_DIR}/config.yaml"}
    source = train_source(wildcards.ensemble)
    if source:
        inputs["source"] = [f"{EXP_DIR}/ensembles/{source}/r{rep:02d}.json" for rep in replicas(source)]
    return inputs


def train_source_args(wildcards):
    source = train_source(wildcards.ensemble)
    if not source:
        return ""
    return " ".join(f"--source-store {EXP_DIR}/ensembles/{source}/r{rep:02d}.zarr" for rep in replicas(source))


def generate_inputs(wildcards):
    """The resolved config, and for ensembles with a trained model the finished training's manifest."""
    inputs = {"config": f"{EXP_DIR}/config.yaml"}
    if wildcards.ensemble in MODEL_ENSEMBLES:
        inputs["model"] = f"{EXP_DIR}/models/{wildcards.ensemble}.json"
    start = CFG.ensembles[wildcards.ensemble].chain.start_from
    if start:
        inputs["start"] = f"{EXP_DIR}/ensembles/{start}/r{wildcards.replica}.json"
    return inputs


def start_store_args(wildcards):
    """--start-store for ensembles whose chains continue another's (chain.start_from)."""
    start = CFG.ensembles[wildcards.ensemble].chain.start_from
    return f"--start-store {EXP_DIR}/ensembles/{start}/r{wildcards.replica}.zarr" if start else ""


def manifests(wildcards):
    """Generate and train manifests (timings for the cost table of the summary)."""
    files = [
        f"{EXP_DIR}/ensembles/{ens}/r{rep:02d}.json" for ens in ENSEMBLES for rep in replicas(ens)
    ]
    return files + [f"{EXP_DIR}/models/{ens}.json" for ens in MODEL_ENSEMBLES]


def replicas(ens):
    return [r + 1 for r in range(CFG.ensembles[ens].chain.replicas)]


def observable_stores(wildcards):
    return [
        f"{EXP_DIR}/observables/{ens}/r{rep:02d}.zarr"
        for ens in ENSEMBLES
        for rep in replicas(ens)
    ]


def estimator_kind(ens):
    return CFG.ensembles[ens].estimator.kind


# ensembles with an estimator (estimate rule; analyze reads their JSON)
ESTIMATE_ENSEMBLES = [e for e in ENSEMBLES if estimator_kind(e) != "none"]


def estimate_inputs(wildcards):
    """Bias-corrected: the cheap and the expensive observable stores; control variates: the
    finished chains (their configurations)."""
    ens = wildcards.ensemble
    inputs = {"config": f"{EXP_DIR}/config.yaml"}
    if estimator_kind(ens) == "bias_corrected":
        inputs["obs"] = [f"{EXP_DIR}/observables/{ens}/r{rep:02d}.zarr" for rep in replicas(ens)]
        inputs["expensive"] = [f"{EXP_DIR}/expensive/{ens}/r{rep:02d}.zarr" for rep in replicas(ens)]
    else:
        inputs["chains"] = [f"{EXP_DIR}/ensembles/{ens}/r{rep:02d}.json" for rep in replicas(ens)]
    return inputs


def estimate_args(wildcards, input):
    """The estimate command's store arguments, from its inputs (control variates: the ensemble
    store beside each finished chain's manifest)."""
    if estimator_kind(wildcards.ensemble) == "bias_corrected":
        return f"--obs {' '.join(input.obs)} --expensive-obs {' '.join(input.expensive)}"
    return "--store " + " ".join(m.removesuffix(".json") + ".zarr" for m in input.chains)


def estimates(wildcards):
    return [f"{EXP_DIR}/estimates/{ens}.json" for ens in ESTIMATE_ENSEMBLES]
