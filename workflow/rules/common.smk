# Shared settings: the experiment, its composed config (at parse time, to know the
# ensembles and replicas), code versions for rerun triggers, paths.
import hashlib
from pathlib import Path

import lqcdml
from lqcdml.config import compose_experiment

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


def code_version(*parts):
    """lqcdml version and a hash of the source files a rule depends on."""
    digest = hashlib.sha256()
    for part in parts:
        base = SRC_DIR / part
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        for f in files:
            if f.is_file():
                digest.update(f.read_bytes())
    return f"{lqcdml.__version__}-{digest.hexdigest()[:12]}"


GENERATE_CODE = code_version("lattice", "theories", "samplers", "store", "config", "cli/generate.py")
MEASURE_CODE = code_version("lattice", "theories", "observables", "store", "config", "cli/measure.py", "cli/measurements.py")
ANALYZE_CODE = code_version("analysis", "store", "cli/analyze.py")
TRAIN_CODE = code_version("lattice", "theories", "nn", "train", "samplers", "config", "cli/train.py")
FLOW_ENSEMBLES = [e for e in ENSEMBLES if CFG.ensembles[e].sampler.name == "flow"]


def model_checkpoint(ens):
    return f"{EXP_DIR}/models/{ens}.pt"


def generate_inputs(wildcards):
    """The resolved config, and for flow ensembles the finished training's manifest."""
    inputs = {"config": f"{EXP_DIR}/config.yaml"}
    if wildcards.ensemble in FLOW_ENSEMBLES:
        inputs["model"] = f"{EXP_DIR}/models/{wildcards.ensemble}.json"
    return inputs


def manifests(wildcards):
    """Generate and train manifests (timings for the cost table of the summary)."""
    files = [
        f"{EXP_DIR}/ensembles/{ens}/r{rep:02d}.json" for ens in ENSEMBLES for rep in replicas(ens)
    ]
    return files + [f"{EXP_DIR}/models/{ens}.json" for ens in FLOW_ENSEMBLES]


def replicas(ens):
    return [r + 1 for r in range(CFG.ensembles[ens].chain.replicas)]


def observable_stores(wildcards):
    return [
        f"{EXP_DIR}/observables/{ens}/r{rep:02d}.zarr"
        for ens in ENSEMBLES
        for rep in replicas(ens)
    ]
