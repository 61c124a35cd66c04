"""The rules' conda environment and pyproject.toml ask for the same software."""

import tomllib

import yaml

from conftest import REPO


def test_conda_env_pins_the_same_packages_as_pyproject():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    env = yaml.safe_load((REPO / "envs" / "lv-dataset.yaml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert sorted(pip_section) == sorted(pyproject["project"]["dependencies"])


def test_conda_env_python_satisfies_requires_python():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    env = yaml.safe_load((REPO / "envs" / "lv-dataset.yaml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("=")[1].split("."))) >= tuple(map(int, minimum.split(".")))


def test_ci_lints_before_it_builds_or_tests():
    """.ci/run runs the linters (seconds) before the phantom build and the tests (minutes), so
    that a formatting slip fails fast."""
    commands = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "echo"))
    ]

    def first(prefix: str) -> int:  # the first command line that runs it
        return next(i for i, command in enumerate(commands) if prefix in command)

    linters = [
        first("ruff check"),
        first("ruff format --check"),
        first("snakefmt --check"),
        first("snakemake --lint"),
    ]
    slow = [first("snakemake --cores"), first("pytest"), first('pip install --quiet -e ".[fr')]
    assert max(linters) < min(slow)
    assert first('pip install -e ".[test]"') < min(linters)  # the linters come with [test]
