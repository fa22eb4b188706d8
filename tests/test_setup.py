"""The set-up: one documented switch installs TensorFlow's CUDA build; nothing declared goes unused."""

import re
import subprocess
import tomllib

from conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def make_dry_run(*args):
    return subprocess.run(["make", "-n", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout


def test_gpu_switch_installs_tensorflows_cuda_build():
    assert any(dep.startswith("tensorflow[and-cuda]") for dep in PYPROJECT["project"]["optional-dependencies"]["gpu"])
    assert "-e '.[test,gpu]'" in make_dry_run("-B", "repro", "GPU=1")
    assert "-e '.[test]'" in make_dry_run("-B", "test")
    assert "GPU=1" in (REPO / "README.md").read_text()


def test_ray_is_an_extra_that_make_installs():
    """The embed stage's Ray workers need Ray; `workers: 1` does not. `make` installs the test extra."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(dep.startswith("ray>=") for dep in extras["cluster"]) and any(dep.startswith("ray>=") for dep in extras["test"])
    assert not any(dep.startswith("ray") for dep in PYPROJECT["project"]["dependencies"])


def test_every_declared_dependency_is_imported_somewhere():
    sources = "\n".join(p.read_text() for folder in ("elmo_imdb", "stages") for p in (REPO / folder).rglob("*.py"))
    module_of = {"pyyaml": "yaml", "scikit-learn": "sklearn", "tensorflow-hub": "tensorflow_hub"}
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = re.split(r"[<>=\[ ]", requirement)[0]
        module = module_of.get(name, name)
        if name == "dvc":  # the pipeline's runner: used as a program, not imported
            continue
        assert re.search(rf"^\s*(import|from) {module}\b", sources, re.MULTILINE), f"{name} is declared but never imported"
