#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root) to a pytest summary.
# Installs the system packages the integration tests drive (each test starts its own services:
# Docker engines, sshd nodes in network namespaces, an OCI registry), makes .venv, runs pytest.
# Debian roots the bootstrap tests debootstrap are cached under $ENVCTL_TEST_CACHE
# (default /var/cache/envctl-tests), one tarball per release: keep that directory between CI runs.
# Extra arguments go to pytest, e.g. `bash tests/run.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-venv docker.io openssh-server iproute2 skopeo docker-registry debootstrap
              busybox-static shellcheck sudo pipx qemu-user-static binfmt-support
              squashfs-tools gcc unzip openjdk-17-jre-headless)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# arm64 bases and images run here under qemu-user-static, through binfmt_misc (idempotent)
[ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check uv
reinstall=()
# The distribution was renamed envctl -> envctl-cluster: drop an install under the old name (it
# owns bin/envctl too, so ours is reinstalled after it).
if .venv/bin/python -m uv pip show -q --python .venv/bin/python envctl >/dev/null 2>&1; then
    .venv/bin/python -m uv pip uninstall -q --python .venv/bin/python envctl
    reinstall=(--reinstall-package envctl-cluster)
fi
.venv/bin/python -m uv pip install -q --python .venv/bin/python "${reinstall[@]}" -e '.[test]'
exec .venv/bin/python -m pytest "$@"
