"""What code computed a stored thing: a digest per source file, blind to comments and docstrings.

A resume record (:mod:`elmo_imdb.resume_record`) that names its inputs and params but not its
code lets a run killed under one version of the code be finished by another, and the result
mixes both. So every record also holds :func:`code_fingerprint` of the modules that compute
the stored numbers, and the versions of the libraries that do the arithmetic (TensorFlow,
NumPy): a change to any of them starts the work over.

A file's digest is the sha256 of its syntax tree without docstrings (``ast.dump``), so editing
a comment, a docstring or the layout of a line does not throw an hour of work away, while any
change to what the code does (a constant, an expression, an argument) does. The fingerprint is
a mapping, file by file, so a mismatch can say which files changed.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata
from pathlib import Path

LIBRARIES = ("tensorflow", "numpy")  # their arithmetic is part of the stored bits


def code_fingerprint(modules: tuple[str, ...]) -> dict[str, str]:
    """``{"elmo_imdb/bilm/lstm.py": digest, ..., "tensorflow": version, ...}`` for ``modules``
    (dotted names; a package stands for every ``.py`` file in it, sub-packages included)."""
    fingerprint = {}
    for name in modules:
        module = importlib.import_module(name)
        origin = Path(module.__file__)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        root = Path(importlib.import_module(name.split(".")[0]).__file__).parent.parent
        for path in files:
            fingerprint[path.relative_to(root).as_posix()] = source_digest(path.read_text(encoding="utf-8"))
    for library in LIBRARIES:
        fingerprint[library] = importlib.metadata.version(library)
    return fingerprint


def source_digest(source: str) -> str:
    """sha256 of the code of ``source``, its docstrings, comments and formatting left out."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()
