"""One build step on top of pyproject.toml: the data folders go into the package.

compat_matrix/, profiles/ and images/ live at the top of the repository (where they are reviewed
and where the solver's tests read them). ``build_py`` copies them into the wheel as
``envctl/_data/<folder>/``, where an installed envctl reads them through importlib.resources
(``envctl.adapters.package_data``). The sdist carries the folders themselves (MANIFEST.in), so a
wheel built from it has the same data. Nothing is committed twice.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA = ("compat_matrix", "profiles", "images")


class BuildPyWithData(build_py):
    """``build_py``, then the data folders copied under ``<build_lib>/envctl/_data/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the folders in place
        for name in DATA:
            source = ROOT / name
            if not source.is_dir():
                raise SystemExit(f"{source}: missing; build from the repository or from its sdist")
            for path in sorted(source.rglob("*")):
                if path.is_symlink():
                    raise SystemExit(f"{path}: a symlink; the data folders hold plain files only")
                if path.is_file() and "__pycache__" not in path.parts:
                    target = Path(self.build_lib, "envctl", "_data", name, path.relative_to(source))
                    self.mkpath(str(target.parent))
                    self.copy_file(str(path), str(target))


setup(cmdclass={"build_py": BuildPyWithData})
