"""The workflow on a real single-node SLURM cluster, through the profile users install.

``scripts/local_slurm.sh`` starts munged, slurmctld and slurmd on localhost (root only:
the tests skip, saying why, where it cannot) and stops them by PID at the end. The
profile is installed the way users do, ``lqcdml profile install cluster --account test
--partition debug --gpus 0`` (the test cluster has no GPUs) into a temporary HOME, and used by name
(``snakemake --profile cluster``); test-only settings go on the command line (FAST).

Three runs share the cluster and run at the same time (``cluster_runs``), each test
waits for its own:

- dag:     the ``ci_cluster`` DAG (compose, generate, measure, analyze) on the cluster,
           and beside it the same DAG with ``snakemake -c2``: equal stores and numbers;
- cancel:  a generate job ``scancel``-ed once its store has committed configurations;
- timeout: a generate job whose first attempt gets a 2-minute time limit (its process is
           stopped mid-chain, so the chain needs longer on any machine), the retry ten.

Both interrupted jobs are retried by Snakemake (the profile's ``retries``) and resume
from their last commit, to the uninterrupted chain bit for bit. Running the three at
once keeps the file near the length of its longest run, the time-limit one: every
cluster job spends ~20 s starting Snakemake twice (the job-step executor, then the job
under srun) before its command runs, the executor's status checks back off (1 s, then
10 s longer each time no job finished), and slurmctld enforces time limits every 30 s.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from ..cli.helpers import BIN, REPO, assert_same_chain, env_with_bin, store_digest

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SCRIPT = REPO / "scripts" / "local_slurm.sh"
SNAKEMAKE = str(BIN / "snakemake")
LQCDML = str(BIN / "lqcdml")
EXP = "ci_cluster"
ENSEMBLES = f"results/{EXP}/ensembles/u1"
# Test-only settings (the installed profile is the users'): first status check after 1 s
# (the test cluster's MinJobAge of 600 s is well above 3x that, as the executor needs to
# trust squeue); keep the SLURM logs of successful jobs too, to read when a test fails.
FAST = ["--slurm-init-seconds-before-status-checks", "1", "--slurm-keep-successful-logs"]
N_CHAIN = 500  # chain of the two interrupted runs (~10 s here unloaded, a minute or more loaded)
INTERRUPT_AT = 10  # their jobs are interrupted once this many configurations are committed
# Command-line --set-resources replaces the profile's whole set-resources: restate the
# generate partition with the per-attempt time limit (minutes).
TIME_LIMITED = ["--set-resources", "generate:slurm_partition=debug", "generate:runtime=2 if attempt == 1 else 10"]
#: minutes of the first attempt: on a loaded machine the job step's two Snakemake starts
#: alone took most of one minute, and SLURM ended the attempt before its chain had begun
FIRST_LIMIT = 2
RUN_TIMEOUT = 900  # seconds any one run may take before the test gives up


def _env(home: Path) -> dict:
    env = env_with_bin()
    env["HOME"] = str(home)
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("SLURM_CONF", None)  # the test cluster's config is at the default path
    return env


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pair() -> int:
    """A port P with P and P + 1 free (slurmctld, slurmd)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535 and _port_free(port + 1):
            return port
    raise RuntimeError("no two adjacent free TCP ports")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A single-node SLURM cluster for the session; stopped (by PID) at its end, whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("not root: cannot start slurmctld/slurmd/munged")
    missing = [
        c
        for c in ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scancel", "scontrol")
        if shutil.which(c) is None
    ]
    if missing:
        pytest.skip(
            f"SLURM/munge not installed ({', '.join(missing)} missing): "
            "scripts/install_test_services.sh installs them when run as root"
        )
    run_dir = tmp_path_factory.mktemp("slurm")
    env = {
        **os.environ,
        "LOCAL_SLURM_RUN_DIR": str(run_dir),
        "LOCAL_SLURM_PORT": str(_free_port_pair()),
        # 4 job slots on 2 cores: the three runs' jobs run at once (slower each, never queued);
        # finished jobs stay visible to squeue/scontrol for the whole file
        "LOCAL_SLURM_CPUS": str(max(4, os.cpu_count() or 1)),
        "LOCAL_SLURM_MIN_JOB_AGE": "600",
        "LOCAL_SLURM_KILL_WAIT": "5",
    }
    env.pop("SLURM_CONF", None)
    try:
        start = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=120)
        if start.returncode == 3:  # this machine cannot host it now; the script says why
            why = start.stderr.strip().splitlines()[-1].split("CANNOT START: ", 1)[-1]
            pytest.skip(f"cannot start a local SLURM cluster: {why}")
        assert start.returncode == 0, start.stderr[-3000:]
        yield run_dir
    finally:
        stop = subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stderr[-3000:]


@pytest.fixture(scope="session")
def user_home(tmp_path_factory) -> Path:
    """A HOME with the cluster profile installed as a user installs it."""
    home = tmp_path_factory.mktemp("home")
    out = subprocess.run(
        [LQCDML, "profile", "install", "cluster", "--account", "test", "--partition", "debug", "--gpus", "0"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert (home / ".config" / "snakemake" / "cluster" / "config.yaml").is_file()
    return home


# --- the cluster's view of jobs --------------------------------------------------------


def _squeue() -> list[tuple[str, str, str]]:
    """(job id, state, working directory) of every job the cluster still knows."""
    out = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%T|%Z"], capture_output=True, text=True, timeout=30)
    return [tuple(line.split("|", 2)) for line in out.stdout.splitlines() if line.count("|") == 2]


def _job(jobid: str) -> dict[str, str]:
    """``scontrol show job``: JobState, TimeLimit, RunTime, Partition, Account, ..."""
    out = subprocess.run(["scontrol", "-o", "show", "job", jobid], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return dict(tok.split("=", 1) for tok in out.stdout.split() if "=" in tok)


def _seconds(slurm_time: str) -> int:
    """[D-]HH:MM:SS -> seconds."""
    days, _, hms = slurm_time.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return ((int(days or 0) * 24 + h) * 60 + m) * 60 + s


_SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/(\S+)/\d+\.log\)")


def _submitted(log: str) -> list[tuple[str, str, str]]:
    """(SLURM job id, rule, wildcards) of every job a Snakemake run submitted, in order."""
    return _SUBMITTED.findall(log)


def _n_committed(store: Path) -> int:
    try:
        return json.loads((store / "zarr.json").read_text())["attributes"]["n_committed"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


# --- the runs --------------------------------------------------------------------------


@dataclass
class Run:
    """A command running in the background in its own folder, output to ``run.log`` there."""

    name: str
    workdir: Path
    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, name: str, workdir: Path, cmd: list[str], env: dict) -> Run:
        workdir.mkdir(parents=True)
        log = workdir / "run.log"
        with open(log, "w") as fh:
            proc = subprocess.Popen(
                cmd, cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        return cls(name, workdir, proc, log)

    def wait(self) -> str:
        """The run's output, once it has finished successfully."""
        try:
            rc = self.proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run {self.name!r} still running after {RUN_TIMEOUT}s; see {self.log}")
        text = self.log.read_text()
        assert rc == 0, f"run {self.name!r} failed ({rc}):\n{text[-4000:]}"
        return text

    def kill(self) -> None:
        """SIGINT (Snakemake cancels its SLURM jobs), then SIGKILL, to the run's process group."""
        for sig, grace in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
            if self.proc.poll() is not None:
                return
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass


def _generate_processes(workdir: Path) -> list[int]:
    """PIDs of the ``lqcdml generate`` processes working in ``workdir`` (a job's, under slurmstepd)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:  # gone, or not ours to read
            continue
        # a console script runs as [python, .../bin/lqcdml, generate, ...]
        if len(argv) > 2 and argv[1].endswith(b"/lqcdml") and argv[2] == b"generate" and cwd == workdir:
            pids.append(int(proc.name))
    return pids


class Monitor(threading.Thread):
    """Acts on the two interrupted runs from outside, each once its job's store holds
    INTERRUPT_AT configurations (of N_CHAIN): ``scancel``s the job of ``cancel``; stops
    (SIGSTOP) the generate process of ``timeout``, so that its chain is still mid-way, on
    any machine, when SLURM ends the job at its time limit (SIGCONT and SIGTERM, then
    SIGKILL after KillWait). It acts on a run's first job only: where that ended before
    its store held INTERRUPT_AT configurations it reports so instead of stopping the retry
    (which then sat stopped until its own limit)."""

    def __init__(self, cancel: Run, timeout: Run):
        super().__init__(daemon=True)
        self.cancel, self.timeout = cancel, timeout
        self.acted: dict[str, tuple[str, int]] = {}  # run name -> (job id, configurations committed then)
        self.error: str | None = None
        self.done = threading.Event()

    def run(self):
        try:
            while not self.done.wait(0.2) and len(self.acted) < 2 and self.error is None:
                self._step()
        except Exception as exc:  # reported by the tests that use the monitor
            self.error = repr(exc)

    def _step(self):
        pending = [
            r
            for r in (self.cancel, self.timeout)
            if r.name not in self.acted and _n_committed(r.workdir / ENSEMBLES / "r01.zarr") >= INTERRUPT_AT
        ]
        if not pending:
            return
        jobs = _squeue()
        for run in pending:
            mine = [(j, state) for j, state, wd in jobs if Path(wd) == run.workdir]
            running = [j for j, state in mine if state == "RUNNING"]
            if len(running) != 1:
                continue
            if running[0] != min((j for j, _ in mine), key=int):  # a retry: the first job is gone
                self.error = (
                    f"run {run.name!r}: its first job ended before its store held {INTERRUPT_AT} "
                    f"configurations (jobs {mine}); the machine is too slow for this test's limits"
                )
                return
            if run is self.timeout:
                pids = _generate_processes(run.workdir)
                if len(pids) != 1:
                    continue
                os.kill(pids[0], signal.SIGSTOP)
            n = _n_committed(run.workdir / ENSEMBLES / "r01.zarr")
            if n >= N_CHAIN:
                self.error = f"run {run.name!r}: the chain was complete ({n}) before it could be interrupted"
                return
            if run is self.cancel:
                subprocess.run(["scancel", running[0]], check=True, timeout=30)
            self.acted[run.name] = (running[0], n)


@dataclass
class ClusterRuns:
    dag: Run
    dag_local: Run
    cancel: Run
    timeout: Run
    reference_run: Run
    monitor: Monitor
    profile: dict  # the installed profile

    def reference(self) -> Path:
        """The uninterrupted chain of both interrupted runs, once written."""
        self.reference_run.wait()
        return self.reference_run.workdir / "reference.zarr"


@pytest.fixture(scope="module")
def cluster_runs(slurm_cluster, user_home, tmp_path_factory):
    """The three runs and the uninterrupted reference chain, started together; stopped at the end."""
    root = tmp_path_factory.mktemp("cluster_runs")
    env = _env(user_home)
    profile = yaml.safe_load((user_home / ".config" / "snakemake" / "cluster" / "config.yaml").read_text())
    workflow = ["-s", str(REPO / "Snakefile")]
    chain = f'overrides=["ensembles.u1.chain.n_configs={N_CHAIN}"]'
    target = ["--", f"{ENSEMBLES}/r01.json"]

    def on_cluster(name, *args):
        workdir = root / name
        return Run.start(
            name,
            workdir,
            [
                SNAKEMAKE,
                "--profile",
                "cluster",
                *workflow,
                "-d",
                str(workdir),
                *FAST,
                "--config",
                f"experiment={EXP}",
                *args,
            ],
            env,
        )

    # the rules' two commands, straight through: compose, then generate replica 1
    reference = (
        f"{LQCDML} compose +experiment={EXP} ensembles.u1.chain.n_configs={N_CHAIN} --out config.yaml"
        f" && {LQCDML} generate --config config.yaml --ensemble u1 --replica 1 --store reference.zarr"
        " threads=1 --progress lines"
    )
    runs = []
    try:
        runs.append(timeout := on_cluster("timeout", chain, *TIME_LIMITED, *target))
        runs.append(cancel := on_cluster("cancel", chain, *target))
        runs.append(dag := on_cluster("dag"))
        runs.append(
            dag_local := Run.start(
                "dag_local",
                root / "dag_local",
                [SNAKEMAKE, "-c2", *workflow, "-d", str(root / "dag_local"), "--config", f"experiment={EXP}"],
                env,
            )
        )
        runs.append(reference_run := Run.start("reference", root / "reference", ["bash", "-c", reference], env))
        monitor = Monitor(cancel, timeout)
        monitor.start()
        try:
            yield ClusterRuns(dag, dag_local, cancel, timeout, reference_run, monitor, profile)
        finally:
            monitor.done.set()
            monitor.join(timeout=30)
    finally:
        for run in runs:
            run.kill()


# --- the tests -------------------------------------------------------------------------


def _summary(workdir: Path) -> dict[tuple[str, str], np.ndarray]:
    """(ensemble, observable) -> [value, error, tau_int] of summary.csv."""
    with open(workdir / "results" / EXP / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    columns = ("value", "error", "tau_int")
    return {(r["ensemble"], r["observable"]): np.array([float(r[k] or "nan") for k in columns]) for r in rows}


def _profile_runtime(profile: dict, rule: str, attempt: int = 1) -> int:
    """Minutes the profile gives a rule's job (set-resources, else default-resources)."""
    default = profile["default-resources"]["runtime"]
    runtime = profile.get("set-resources", {}).get(rule, {}).get("runtime", default)
    if isinstance(runtime, str):  # an expression of the attempt, as Snakemake evaluates it
        return eval(runtime, {"attempt": attempt})
    return runtime


def test_dag_on_the_cluster_gives_the_local_results(cluster_runs):
    log = cluster_runs.dag.wait()
    cluster_runs.dag_local.wait()
    cluster, local = cluster_runs.dag.workdir, cluster_runs.dag_local.workdir

    # compose ran on the submit host (a local rule), every other job as a SLURM job with
    # the account, partition and time limit of the installed profile
    assert "localrule compose_config:" in log
    jobs = _submitted(log)
    rules = [rule for _, rule, _ in jobs]
    assert (rules.count("generate"), rules.count("measure"), rules.count("analyze")) == (2, 2, 1), jobs
    assert "compose_config" not in rules
    for jobid, rule, _ in jobs:
        info = _job(jobid)
        assert (info["JobState"], info["Account"], info["Partition"]) == ("COMPLETED", "test", "debug"), info
        assert _seconds(info["TimeLimit"]) == 60 * _profile_runtime(cluster_runs.profile, rule), (rule, info)

    for replica in ("r01", "r02"):
        assert_same_chain(
            store_digest(local / ENSEMBLES / f"{replica}.zarr"), store_digest(cluster / ENSEMBLES / f"{replica}.zarr")
        )
    on_cluster, here = _summary(cluster), _summary(local)
    assert on_cluster.keys() == here.keys() and ("u1", "plaquette") in here
    assert np.all(np.isfinite(here["u1", "plaquette"]))
    for key in here:
        assert np.array_equal(on_cluster[key], here[key], equal_nan=True), key


def _job_logs(run: Run, jobids: list[str]) -> str:
    """What each SLURM job wrote (its SLURM log and the rule's log), for a failing test's message."""
    parts = []
    for jobid in jobids:
        for path in sorted((run.workdir / "results" / "logs" / "slurm").rglob(f"{jobid}.log")):
            parts.append(f"--- SLURM job {jobid} ({_job(jobid).get('JobState')}): {path}\n{path.read_text()[-2000:]}")
    for path in sorted((run.workdir / "results" / EXP / "logs").glob("generate_*.log")):
        parts.append(f"--- {path}\n{path.read_text()[-2000:]}")
    return "\n".join(parts)


def _interrupted_then_resumed(cluster_runs: ClusterRuns, run: Run, state: str) -> tuple[dict, dict, dict]:
    """SLURM's records of the run's two generate jobs (interrupted with ``state``, then
    complete), and the chain's manifest."""
    log = run.wait()
    assert cluster_runs.monitor.error is None, cluster_runs.monitor.error
    jobs = [jobid for jobid, rule, _ in _submitted(log) if rule == "generate"]
    assert len(jobs) == 2, f"generate jobs submitted: {jobs}\n{log[-3000:]}\n{_job_logs(run, jobs)}"
    first, second = jobs
    assert f"SLURM-job '{first}' failed, SLURM status is: '{state}'" in log, log[-3000:]
    assert "Trying to restart job" in log
    one, two = _job(first), _job(second)
    assert (one["JobState"], two["JobState"]) == (state, "COMPLETED")
    manifest = json.loads((run.workdir / ENSEMBLES / "r01.json").read_text())
    assert manifest["n_committed"] == N_CHAIN
    assert 0 < manifest["resumed_from"] < N_CHAIN, manifest["resumed_from"]
    return one, two, manifest


def _check_interruption(cluster_runs: ClusterRuns, run: Run, first: dict, manifest: dict) -> None:
    monitor = cluster_runs.monitor
    assert monitor.error is None, monitor.error
    assert run.name in monitor.acted, f"the monitor did not interrupt run {run.name!r}"
    jobid, n_then = monitor.acted[run.name]
    assert jobid == first["JobId"] and INTERRUPT_AT <= n_then < N_CHAIN
    # nothing committed is lost: the retry resumes from (at least) what the store had then
    assert manifest["resumed_from"] >= n_then
    assert_same_chain(store_digest(cluster_runs.reference()), store_digest(run.workdir / ENSEMBLES / "r01.zarr"))


def test_scancelled_generate_job_is_retried_and_resumes_from_its_last_commit(cluster_runs):
    run = cluster_runs.cancel
    first, _, manifest = _interrupted_then_resumed(cluster_runs, run, "CANCELLED")
    _check_interruption(cluster_runs, run, first, manifest)


def test_generate_job_at_its_time_limit_is_retried_with_more_time_and_resumes(cluster_runs):
    run = cluster_runs.timeout
    first, second, manifest = _interrupted_then_resumed(cluster_runs, run, "TIMEOUT")
    # attempt 1: FIRST_LIMIT minutes, ended by SLURM at it (time limits are checked every
    # 30 s); attempt 2: ten minutes
    assert (first["TimeLimit"], second["TimeLimit"]) == (f"00:{FIRST_LIMIT:02d}:00", "00:10:00")
    assert 60 * FIRST_LIMIT <= _seconds(first["RunTime"]) <= 60 * FIRST_LIMIT + 30 + 10, first["RunTime"]
    slurm_log = run.workdir / "results" / "logs" / "slurm" / "rule_generate"
    assert "DUE TO TIME LIMIT" in "".join(p.read_text() for p in slurm_log.rglob(f"{first['JobId']}.log"))
    _check_interruption(cluster_runs, run, first, manifest)
