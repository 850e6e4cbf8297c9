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
