"""The console scripts of pyproject.toml's [project.scripts]: `seqzoo-train` runs what `python -m training.train`
runs, and so on, from any directory.

`python -m` puts the current directory first on the import path, so inside a project that has a `training/` or
`serving/` package of its own it imports that one. A console script does not: each function here runs its entry
point's module as `__main__` (as `python -m` does, so --help and the exit status are the same) from the installed
packages.
"""

import runpy
import sys


def run_module(name):
    """Runs module `name` as the program, with its --help and exit status (`SystemExit`), as `python -m name` would."""
    runpy.run_module(name, run_name="__main__", alter_sys=True)


def module_command(name):
    """The command line that runs module `name` in a new Python process, as its console script would: unlike
    `[sys.executable, "-m", name]`, it does not import the current directory's packages. Append the flags."""
    bootstrap = (
        "import sys\n"
        "if sys.path[:1] == ['']:\n"  # -c puts the current directory first on the path (unless -P or PYTHONSAFEPATH)
        "    del sys.path[0]\n"
        "from serving.commands import run_module\n"
        f"run_module({name!r})\n"
    )
    return [sys.executable, "-c", bootstrap]


def train():
    run_module("training.train")


def evaluate():
    run_module("training.evaluate")


def keras_file():
    run_module("training.keras_file")


def export():
    run_module("serving.export")


def server():
    run_module("serving.server")


def client():
    run_module("serving.client")


def demo():
    run_module("serving.demo")
