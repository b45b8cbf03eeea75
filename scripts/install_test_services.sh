#!/usr/bin/env bash
# The system programs some tests drive for real, installed from Debian's packages when
# this runs as root with apt (CI, a fresh test machine); elsewhere it installs nothing
# and says so: those tests then skip, each with its reason in pytest's summary.
#   slurmctld slurmd slurm-client munge : a single-node SLURM cluster (tests/workflow/test_cluster.py)
#   chromium chromium-driver             : the Snakemake report opened in a headless browser
#                                          (tests/workflow/test_report.py, through selenium)
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge chromium chromium-driver)
COMMANDS=(slurmctld slurmd sbatch munged chromium chromedriver)

missing=0
for c in "${COMMANDS[@]}"; do command -v "$c" >/dev/null 2>&1 || missing=1; done
if [ "$missing" = 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_test_services: not root or no apt-get: SLURM and browser tests will skip" >&2
    exit 0
fi
echo "install_test_services: apt-get install ${PACKAGES[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
