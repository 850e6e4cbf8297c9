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


# Architectures of the lecture that zoo/ does not have yet: the package description must not list them, and the
# README's introduction names them only on its roadmap.
NOT_BUILT = re.compile(r"\b(recursive|tree|attention|encoder|seq2seq|memory network|memn2n|turing|ntm|speech)", re.I)


def test_the_package_description_lists_only_what_is_built():
    with open(os.path.join(REPOSITORY, "pyproject.toml")) as f:
        (description,) = re.findall(r'^description = "(.*)"$', f.read(), re.M)
    assert not NOT_BUILT.search(description), description


def test_the_readme_introduction_puts_what_is_not_built_on_the_roadmap():
    with open(os.path.join(REPOSITORY, "README.md")) as f:
        introduction = " ".join(f.read().split("\n\n")[1].split())
    built, roadmap = introduction.split("On the roadmap, not built yet:")
    assert not NOT_BUILT.search(built), built
    assert len(NOT_BUILT.findall(roadmap)) >= 5, roadmap
