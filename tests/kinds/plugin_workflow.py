"""A copy of the repository's workflow with one more experiment file, and the environment in
which its jobs find kinds defined in a test module (``LQCDML_PLUGINS``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lqcdml.config import config_dir

from ..cli.helpers import REPO, env_with_bin


def workflow_with(root: Path, experiment: str, text: str) -> Path:
    """``root`` holding the Snakefile, ``workflow/`` and ``conf/`` with
    ``conf/experiment/<experiment>.yaml`` = ``text``; ``src`` is linked (the rerun triggers
    digest the source below the workflow). Returns ``root``."""
    shutil.copytree(config_dir(), root / "conf")
    shutil.copytree(REPO / "workflow", root / "workflow")
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    (root / "src").symlink_to(REPO / "src")
    (root / "conf" / "experiment" / f"{experiment}.yaml").write_text(text)
    return root


def plugin_env(plugin: str) -> dict:
    """The test environment with ``LQCDML_PLUGINS = plugin`` importable from the repository."""
    env = env_with_bin()
    env["LQCDML_PLUGINS"] = plugin
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env
