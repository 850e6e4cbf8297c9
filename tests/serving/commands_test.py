"""The installed commands (seqzoo-train, ...) from a project of one's own, and the wheel they come in."""

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from serving.commands import module_command
from tests.serving.server.conftest import free_port

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Each command, and a flag of its own that its --help must list.
COMMANDS = {
    "seqzoo-train": "task",
    "seqzoo-evaluate": "split",
    "seqzoo-keras-file": "output",
    "seqzoo-export": "export_base",
    "seqzoo-server": "model_config_file",
    "seqzoo-client": "protocol",
    "seqzoo-demo": "serve",
}


def command(name):
    """The console script `name` that pip installed next to this Python (make setup does, from pyproject.toml)."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    assert os.access(path, os.X_OK), f"{path} is not installed: run `make setup` (pip install -e .) again"
    return path


@pytest.fixture
def project(tmp_path):
    """A user's project directory with packages of its own called `training` and `serving`, which must never be
    imported in place of seqzoo's."""
    for name in ("training", "serving"):
        os.makedirs(tmp_path / name)
        (tmp_path / name / "__init__.py").write_text(f'raise ImportError("the project\'s own {name} package")\n')
    return tmp_path


def lists_flag(help_text, name):
    return re.search(rf"^  --(\[no\])?{name}:", help_text, re.M) is not None


def run_in(directory, args, timeout=300):
    result = subprocess.run(args, cwd=directory, capture_output=True, text=True, timeout=timeout)
    assert "the project's own" not in result.stderr, result.stderr
    return result


def test_train_and_client_commands_work_in_a_project_with_its_own_packages(project):
    # python -m would import the project's packages (the current directory comes first on the import path).
    unsafe = {key: value for key, value in os.environ.items() if key != "PYTHONSAFEPATH"}
    assert "the project's own training package" in subprocess.run(
        [sys.executable, "-m", "training.train", "--help"], cwd=project, capture_output=True, text=True, env=unsafe,
        timeout=300).stderr
    for name in ("seqzoo-train", "seqzoo-client"):
        result = run_in(project, [command(name), "--help"])
        assert result.returncode == 0, result.stderr
        assert lists_flag(result.stdout, COMMANDS[name]), result.stdout
    result = run_in(project, [command("seqzoo-train"), "--task=adding"])
    assert result.returncode == 2 and "Flag --model_dir must have a value other than None" in result.stderr


def test_module_command_does_not_import_the_current_directorys_packages(project):
    # The demo starts the server this way.
    result = run_in(project, module_command("serving.client") + ["--help"], timeout=120)
    assert result.returncode == 0 and "  --protocol:" in result.stdout, result.stderr


def test_the_wheel_carries_the_commands_and_the_demos_configs(tmp_path):
    source = tmp_path / "source"
    os.makedirs(source)
    shutil.copy(os.path.join(REPOSITORY, "pyproject.toml"), source)
    shutil.copy(os.path.join(REPOSITORY, "README.md"), source)
    for package in ("zoo", "training", "serving"):
        shutil.copytree(os.path.join(REPOSITORY, package), source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--wheel-dir", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").iterdir()
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        archive.extractall(tmp_path / "installed")
    for name in ("batching.config", "monitoring.config"):
        assert f"serving/configs/{name}" in names
    # The bundled text corpus (package data of training.data), which the char_* language-model presets read.
    for name in ("tinyshakespeare.txt.gz", "README.md"):
        assert f"training/data/corpora/{name}" in names
    for name in COMMANDS:
        assert re.search(rf"^{name} = serving\.commands:\w+$", entry_points, re.M), entry_points
    # Outside the repository, the demo finds its configs in the installed package, not in the current directory
    # (whose decoy serving/configs/ must not be read).
    elsewhere = tmp_path / "elsewhere"
    os.makedirs(elsewhere / "serving" / "configs")
    (elsewhere / "serving" / "configs" / "batching.config").write_text("not the package's\n")
    probe = ("import json, sys\nsys.path.remove(sys.path[0])\nimport serving.demo as demo\n"
             "print(json.dumps({'configs': str(demo.CONFIGS), 'serving': demo.__file__}))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(tmp_path / "installed")})
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    installed = tmp_path / "installed" / "serving"
    assert found["serving"] == str(installed / "demo.py")
    assert found["configs"] == str(installed / "configs")
    for name in ("batching.config", "monitoring.config"):
        assert filecmp.cmp(installed / "configs" / name, os.path.join(REPOSITORY, "serving", "configs", name))


@pytest.mark.slow
def test_the_readme_chain_runs_from_a_project_with_its_own_packages(project):
    for name in ("seqzoo-evaluate", "seqzoo-export", "seqzoo-server", "seqzoo-demo"):
        result = run_in(project, [command(name), "--help"])
        assert result.returncode == 0 and lists_flag(result.stdout, COMMANDS[name]), result.stdout + result.stderr
    trained = run_in(project, [command("seqzoo-train"), "--task=adding", "--preset=short", "--model_dir=runs/adding",
                               "--steps=30", "--progress=lines"])
    assert trained.returncode == 0, trained.stderr
    evaluated = run_in(project, [command("seqzoo-evaluate"), "--model_dir=runs/adding"])
    assert evaluated.returncode == 0 and evaluated.stdout.startswith("test split, best checkpoint"), evaluated.stderr
    exported = run_in(project, [command("seqzoo-export"), "--model_dir=runs/adding", "--name=adding"])
    assert exported.returncode == 0, exported.stderr
    assert (project / "saved_models" / "adding" / "1" / "saved_model.pb").exists()
    grpc_port, rest_port = free_port(), free_port()
    server = subprocess.Popen(
        [command("seqzoo-server"), "--model_config_file=saved_models/models.config", f"--port={grpc_port}",
         f"--rest_api_port={rest_port}"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = server.stdout.readline()
        answer = banner and run_in(project, [command("seqzoo-client"), f"--server=127.0.0.1:{rest_port}",
                                             "--protocol=rest", "--model=adding",
                                             "--input=[[[0.5, 1], [0.2, 0], [0.3, 1]]]"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    errors = server.stderr.read()
    assert banner.startswith("serving adding: gRPC on"), banner + errors
    assert "the project's own" not in errors
    assert answer.returncode == 0, answer.stderr
    assert len(json.loads(answer.stdout)["sum"]) == 1  # one sequence in, one sum out
