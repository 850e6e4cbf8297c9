"""The repository's Markdown: every link leads to a file of the repository, and the docs make no claim the code
contradicts."""

import glob
import os
import re

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("benchmarks", "deploy", "docs", "saved_models", "serving", "training", "zoo")
DOCUMENTS = sorted(
    os.path.relpath(path, REPOSITORY)
    for pattern in ["README.md"] + [f"{folder}/**/*.md" for folder in FOLDERS]
    for path in glob.glob(os.path.join(REPOSITORY, pattern), recursive=True)
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_documents_are_found():
    assert {"README.md", "serving/README.md", "saved_models/README.md"} <= set(DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_links_lead_to_files_of_the_repository(document):
    with open(os.path.join(REPOSITORY, document)) as f:
        text = f.read()
    for target in LINK.findall(text):
        assert "://" not in target and not target.startswith("/"), f"{document} links outside the repository: {target}"
        path = os.path.normpath(os.path.join(REPOSITORY, os.path.dirname(document), target.split("#")[0]))
        assert os.path.commonpath([path, REPOSITORY]) == REPOSITORY, f"{document} links outside the repository: {target}"
        assert os.path.exists(path), f"{document} links to {target}, which does not exist"


def test_no_document_says_every_export_uses_only_core_ops():
    # The language model's export tokenizes with TensorFlow Text ops (training/text/tokenizer.py).
    for document in DOCUMENTS:
        with open(os.path.join(REPOSITORY, document)) as f:
            text = " ".join(f.read().split()).lower()
        assert not re.search(r"only (tensorflow|tf) core ops", text), document


# The architectures of the lecture, every one built: the package description and the README's introduction name each.
ARCHITECTURES = {
    "Elman": r"\bElman\b", "Jordan": r"\bJordan\b", "leaky units": r"\bleaky\b", "LSTM": r"\bLSTM\b",
    "GRU": r"\bGRU\b", "language models": r"language models?\b", "attention": r"\battention\b",
    "encoder-decoder": r"encoder[-–]decoder", "memory networks": r"Memory Networks", "NTM": r"Neural Turing Machine",
    "recursive networks": r"Tree-(RNN|LSTM)", "speech recognition": r"\bspeech\b",
}


def test_the_package_description_and_the_readme_introduction_name_every_architecture():
    with open(os.path.join(REPOSITORY, "pyproject.toml")) as f:
        (description,) = re.findall(r'^description = "(.*)"$', f.read(), re.M)
    with open(os.path.join(REPOSITORY, "README.md")) as f:
        introduction = " ".join(f.read().split("\n\n")[1].split())
    for text in (description, introduction):
        missing = [name for name, pattern in ARCHITECTURES.items() if not re.search(pattern, text, re.I)]
        assert not missing, f"{missing} not named in: {text}"
    assert "roadmap" not in introduction.lower(), introduction  # nothing of the lecture is left to build


# The entry points that the documents' shell blocks call, by command and by module, and the file defining their flags.
ENTRY_POINTS = {
    "seqzoo-train": "training/train.py", "training.train": "training/train.py",
    "seqzoo-evaluate": "training/evaluate.py", "training.evaluate": "training/evaluate.py",
    "seqzoo-keras-file": "training/keras_file.py", "training.keras_file": "training/keras_file.py",
    "seqzoo-export": "serving/export.py", "serving.export": "serving/export.py",
    "seqzoo-server": "serving/server/__main__.py", "serving.server": "serving/server/__main__.py",
    "seqzoo-client": "serving/client.py", "serving.client": "serving/client.py",
    "seqzoo-demo": "serving/demo.py", "serving.demo": "serving/demo.py",
}
COMMAND = re.compile(r"(?:^|/|\s)(?:python -m )?(seqzoo-\w+|training\.\w+|serving\.\w+)\s(.*)")


def shell_commands(document):
    """(entry point, its arguments) of every call of an entry point in the document's ```sh blocks."""
    with open(os.path.join(REPOSITORY, document)) as f:
        blocks = re.findall(r"```sh\n(.*?)```", f.read(), re.S)
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            match = COMMAND.search(line)
            if match and match.group(1) in ENTRY_POINTS and not line.startswith("#"):
                yield match.group(1), match.group(2)


@pytest.mark.parametrize("document", ["README.md", "serving/README.md"])
def test_shell_blocks_call_entry_points_with_runnable_flags(document):
    calls = list(shell_commands(document))
    assert calls, f"no entry point called in {document}'s shell blocks"
    for entry_point, arguments in calls:
        # Runnable as pasted: no "[--flag]" options or "a | b" choices.
        assert not re.search(r"\[--|\s\|\s", arguments), f"{entry_point} {arguments}"
        with open(os.path.join(REPOSITORY, ENTRY_POINTS[entry_point])) as f:
            defined = set(re.findall(r'DEFINE_\w+\(\s*"(\w+)"', f.read()))
        for flag in re.findall(r"(?:^|\s)--(?:no)?(\w+)", arguments):
            assert flag in defined, f"{document}: {entry_point} has no flag --{flag} ({arguments})"
