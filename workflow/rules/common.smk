# Shared settings: which experiments, their composed configs (lazily, at DAG-building time,
# to know each one's ensembles and replicas), code versions for rerun triggers, paths.
#
# Every path carries the experiment, {RESULTS}/{experiment}/..., so one run can build
# several: `snakemake -c2 paper_flow_phi4 paper_cv_phi4` reruns both studies. The
# experiment of `--config experiment=X` (the default target `all`) takes the Hydra
# overrides of `--config overrides=[...]`; the paper targets compose their files as they
# are. `--config scale=smoke` turns every experiment name E into E_smoke (its file in
# conf/experiment/ shrinks the study to minutes).
import functools
import hashlib
from pathlib import Path

import lqcdml
from lqcdml.code_digest import source_digest
from lqcdml.config import ConfigError, compose_experiment
from lqcdml.kinds import ESTIMATORS, SAMPLERS, trainer_kind

CONF_DIR = str(Path(workflow.basedir) / "conf")
CONF_ROOT = str(Path(CONF_DIR) / "config.yaml")
CONF_FILES = sorted(str(p) for p in Path(CONF_DIR).glob("*/*.yaml"))
SRC_DIR = Path(workflow.basedir) / "src" / "lqcdml"
# config: conf/workflow.yaml with --configfile and --config, checked by rules/config.smk
SCALE = config["scale"]
OVERRIDES = list(config["overrides"])
JOB_THREADS = config["job_threads"]
# the published studies, each a target of its own (rules/papers.smk): the experiments with a
# paper file (analysis.paper_files.paper_names, read here without importing the analysis)
PAPERS = sorted(p.stem for p in (SRC_DIR / "analysis" / "published").glob("*.yaml"))


def scaled(name, strict=True):
    """The experiment that `name` is at --config scale=...: itself at full scale, else
    name_<scale>; without such a file an error (strict) or `name` itself."""
    if SCALE == "full":
        return name
    scaled_name = f"{name}_{SCALE}"
    if (Path(CONF_DIR) / "experiment" / f"{scaled_name}.yaml").is_file():
        return scaled_name
    if not strict:
        return name
    have = sorted(p.stem.removesuffix(f"_{SCALE}") for p in Path(CONF_DIR).glob(f"experiment/*_{SCALE}.yaml"))
    raise ConfigError(f"scale = {SCALE!r} for experiment {name!r}: no conf/experiment/{scaled_name}.yaml; "
                      f"allowed: scale=full, or scale={SCALE} for {', '.join(have) or 'no experiment'}")


# the experiment of --config experiment=... (the target `all`), which takes the overrides
BASE_EXPERIMENT = config["experiment"]
EXPERIMENT = scaled(BASE_EXPERIMENT, strict=False)


@functools.cache
def cfg(experiment):
    """The composed config of an experiment (with --config overrides for the chosen one)."""
    return compose_experiment(experiment, OVERRIDES if experiment == EXPERIMENT else [], CONF_DIR)


RESULTS = cfg(EXPERIMENT).paths.results
EXP_DIR = f"{RESULTS}/{EXPERIMENT}"
# every path below: {RESULTS}/{experiment}/...
EXP = f"{RESULTS}/{{experiment}}"


wildcard_constraints:
    experiment=r"[A-Za-z0-9_.\-]+",
    ensemble=r"[A-Za-z0-9_.\-]+",
    replica=r"\d\d",


def ensembles(experiment):
    return sorted(cfg(experiment).ensembles)


def ensemble_cfg(wildcards):
    return cfg(wildcards.experiment).ensembles[wildcards.ensemble]


def gpu(wildcards):
    """GPUs a job asks for by default: one where the experiment's device is CUDA. A profile's
    set-resources may ask for more or none; the job's device follows what it got (--gpus)."""
    return 1 if cfg(wildcards.experiment).device.startswith("cuda") else 0



def code_version(*modules, dispatchers=()):
    """lqcdml version and a hash of the source files the modules import (transitively)."""
    return source_digest(SRC_DIR, *modules, dispatchers=dispatchers, version=lqcdml.__version__)


def files_digest(folder, pattern):
    """The first 12 hex digits of the SHA-256 of the names and bytes of ``folder/pattern``."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob(pattern)):
        data = path.read_bytes()
        digest.update(b"%s\0%d:" % (path.name.encode(), len(data)) + data)
    return digest.hexdigest()[:12]


# Rerun triggers (params.code): a digest of the files of the CLI module a rule's shell
# command runs and of every package module it imports, found by static analysis of
# SRC_DIR (lqcdml/code_digest.py: also imports inside functions, and the packages'
# __init__.py). Every `lqcdml CMD` runs cli/main.py first; main.py counts for compose
# and generate as a dispatcher: its module-level imports are followed, not the lazy
# import of each subcommand inside run(), which would make the generate trigger the
# union of all subcommands (an edit in analysis/ would rerun every chain). measure,
# train and analyze leave main.py out; an edit of it reruns them anyway: it changes the
# compose trigger, and a recomposed config reruns every job below it in the same run.
# the estimator kinds name their estimates and reports as "module:function" (imported when
# called, so that generate's closure, which looks kinds up, leaves them out): estimate and
# analyze add those modules
KIND_MODULES = sorted({m for kind in ESTIMATORS for m in kind.modules if m.startswith("lqcdml.")})
MAIN = "lqcdml.cli.main"
COMPOSE_CODE = code_version(MAIN, "lqcdml.config", dispatchers=[MAIN])
GENERATE_CODE = code_version("lqcdml.cli.generate", MAIN, dispatchers=[MAIN])
MEASURE_CODE = code_version("lqcdml.cli.measure")
# the published comparisons are data the analysis reads (analysis/published/*.yaml): their
# bytes join its trigger, which follows Python imports only
ANALYZE_CODE = f'{code_version("lqcdml.cli.analyze", *KIND_MODULES)}+{files_digest(SRC_DIR / "analysis" / "published", "*.yaml")}'
TRAIN_CODE = code_version("lqcdml.cli.train")
ESTIMATE_CODE = code_version("lqcdml.cli.estimate", *KIND_MODULES)


def model_ensembles(experiment):
    """Ensembles whose sampler uses a trained model (train rule, generate --model)."""
    c = cfg(experiment)
    return [e for e in sorted(c.ensembles) if SAMPLERS.lookup(c.ensembles[e].sampler.name).needs_model]


def model_checkpoint(wildcards):
    return f"{RESULTS}/{wildcards.experiment}/models/{wildcards.ensemble}.pt"


# Functions that give a shell command several arguments return them as a list: the rules
# write them as {params.x:q}, which quotes each one, so that a results path with spaces,
# quotes, `;`, `$(...)` or backquotes reaches lqcdml as the literal path it is.


def model_args(wildcards):
    """--model for ensembles whose sampler uses a trained model (a list of arguments)."""
    if wildcards.ensemble in model_ensembles(wildcards.experiment):
        return ["--model", model_checkpoint(wildcards)]
    return []


def store_path(wildcards):
    """The ensemble store of a replica (not a declared output: see generate.smk)."""
    return f"{RESULTS}/{wildcards.experiment}/ensembles/{wildcards.ensemble}/r{wildcards.replica}.zarr"


def config_file(wildcards):
    return f"{RESULTS}/{wildcards.experiment}/config.yaml"


def replicas(experiment, ens):
    return [r + 1 for r in range(cfg(experiment).ensembles[ens].chain.replicas)]


def train_source(wildcards):
    """The ensemble a model trains on (train.source: SLHMC networks trained offline), or None."""
    ens = ensemble_cfg(wildcards)
    return trainer_kind(ens).source(ens.train) or None


def train_inputs(wildcards):
    """The resolved config, and the finished chains of train.source where a model trains on them."""
    exp = wildcards.experiment
    inputs = {"config": config_file(wildcards)}
    source = train_source(wildcards)
    if source:
        inputs["source"] = [f"{RESULTS}/{exp}/ensembles/{source}/r{rep:02d}.json" for rep in replicas(exp, source)]
    return inputs


def train_source_args(wildcards):
    """--source-store for each replica of train.source (a list of arguments)."""
    source = train_source(wildcards)
    if not source:
        return []
    exp = wildcards.experiment
    stores = [f"{RESULTS}/{exp}/ensembles/{source}/r{rep:02d}.zarr" for rep in replicas(exp, source)]
    return [arg for store in stores for arg in ("--source-store", store)]


def generate_inputs(wildcards):
    """The resolved config, and for ensembles with a trained model the finished training's manifest."""
    exp = wildcards.experiment
    inputs = {"config": config_file(wildcards)}
    if wildcards.ensemble in model_ensembles(exp):
        inputs["model"] = f"{RESULTS}/{exp}/models/{wildcards.ensemble}.json"
    start = ensemble_cfg(wildcards).chain.start_from
    if start:
        inputs["start"] = f"{RESULTS}/{exp}/ensembles/{start}/r{wildcards.replica}.json"
    return inputs


def start_store_args(wildcards):
    """--start-store for ensembles whose chains continue another's (chain.start_from; a list)."""
    start = ensemble_cfg(wildcards).chain.start_from
    if not start:
        return []
    return ["--start-store", f"{RESULTS}/{wildcards.experiment}/ensembles/{start}/r{wildcards.replica}.zarr"]


def manifests(wildcards):
    """Generate and train manifests (timings for the cost table of the summary)."""
    exp = wildcards.experiment
    files = [f"{RESULTS}/{exp}/ensembles/{ens}/r{rep:02d}.json" for ens in ensembles(exp) for rep in replicas(exp, ens)]
    return files + [f"{RESULTS}/{exp}/models/{ens}.json" for ens in model_ensembles(exp)]


def observable_stores(wildcards):
    exp = wildcards.experiment
    return [f"{RESULTS}/{exp}/observables/{ens}/r{rep:02d}.zarr" for ens in ensembles(exp) for rep in replicas(exp, ens)]


def estimator(experiment, ens):
    """The estimator kind of an ensemble (its `reads` say which stores feed the estimate)."""
    return ESTIMATORS.lookup(cfg(experiment).ensembles[ens].estimator.kind)


# the stores an estimator kind may read: each one's folder and the `lqcdml estimate` flag that takes it
# (the ensemble stores are no declared output: the finished chains' manifests stand for them)
ESTIMATE_STORE_FLAGS = {"observables": "--obs", "expensive": "--expensive-obs", "ensembles": "--store"}


def estimate_inputs(wildcards):
    """The resolved config and the stores the ensemble's estimator kind reads (`reads`)."""
    exp, ens = wildcards.experiment, wildcards.ensemble
    inputs = {"config": config_file(wildcards)}
    for store in estimator(exp, ens).reads:
        suffix = "json" if store == "ensembles" else "zarr"
        inputs[store] = [f"{RESULTS}/{exp}/{store}/{ens}/r{rep:02d}.{suffix}" for rep in replicas(exp, ens)]
    return inputs


def estimate_args(wildcards, input):
    """The estimate command's store arguments, from its inputs (a list of arguments; the
    ensemble store beside each finished chain's manifest)."""
    args = []
    for store in estimator(wildcards.experiment, wildcards.ensemble).reads:
        paths = [p.removesuffix(".json") + ".zarr" if store == "ensembles" else p for p in input[store]]
        args += [ESTIMATE_STORE_FLAGS[store], *paths]
    return args


def estimates(wildcards):
    """Estimator results of the ensembles with an estimator (analyze reads them)."""
    exp = wildcards.experiment
    return [f"{RESULTS}/{exp}/estimates/{ens}.json" for ens in ensembles(exp) if estimator(exp, ens).runs]


def compose_overrides(wildcards):
    """The --config overrides, for the experiment they were given for: a list, one argument
    each, passed to `lqcdml compose` as they are (Hydra parses them, no shell)."""
    return list(OVERRIDES) if wildcards.experiment == EXPERIMENT else []
