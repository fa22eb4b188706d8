"""The one resume record of embed and pretrain: progress back only under the same identity, and why not."""

import json

from elmo_imdb.code_fingerprint import code_fingerprint, source_digest
from elmo_imdb.resume_record import ResumeRecord

IDENTITY = {"elmo": "bilm:abc", "batch_size": 50, "code": {"elmo_imdb/bilm/lstm.py": "1", "elmo_imdb/features.py": "2"}}


def test_progress_comes_back_under_the_same_identity(tmp_path):
    ResumeRecord(tmp_path / "r.json", IDENTITY).save({"rows_done": 500})
    assert ResumeRecord(tmp_path / "r.json", json.loads(json.dumps(IDENTITY))).load() == ({"rows_done": 500}, "")


def test_another_identity_names_the_changed_keys_values_and_source_files(tmp_path):
    ResumeRecord(tmp_path / "r.json", IDENTITY).save({"rows_done": 500})
    now = {**IDENTITY, "batch_size": 7, "code": {**IDENTITY["code"], "elmo_imdb/bilm/lstm.py": "changed"}}
    assert ResumeRecord(tmp_path / "r.json", now).load() == (
        None, "it was made with other batch_size 50 (now 7); code (elmo_imdb/bilm/lstm.py)"
    )


def test_a_missing_or_damaged_record_is_nothing_to_resume(tmp_path):
    record = ResumeRecord(tmp_path / "r.json", IDENTITY)
    assert record.load() == (None, "no progress record")
    (tmp_path / "r.json").write_text('{"identity": {')
    progress, reason = record.load()
    assert progress is None and reason.startswith("its progress record is unreadable (JSONDecodeError")
    (tmp_path / "r.json").write_text('{"rows_done": 3}')  # a record of older code, without an identity
    assert record.load() == (None, "its progress record is unreadable (KeyError: 'identity')")


def test_the_code_fingerprint_ignores_docstrings_and_comments_but_not_code():
    code = 'def f(x):\n    """Why."""\n    return x + 1  # add one\n'
    assert source_digest(code) == source_digest('def f(x):\n    """Another why."""\n    return x + 1\n')
    assert source_digest(code) == source_digest("def f(x):\n    return (x\n            + 1)\n")
    assert source_digest(code) != source_digest('def f(x):\n    """Why."""\n    return x + 2\n')
    assert source_digest(code) != source_digest('def f(x):\n    """Why."""\n    return "x + 1"\n')


def test_the_code_fingerprint_covers_every_file_of_a_package_and_the_arithmetics_libraries():
    fingerprint = code_fingerprint(("elmo_imdb.embedders", "elmo_imdb.bilm"))
    assert {"elmo_imdb/embedders.py", "elmo_imdb/bilm/lstm.py", "elmo_imdb/bilm/model.py", "tensorflow", "numpy"} <= fingerprint.keys()
    assert "elmo_imdb/features.py" not in fingerprint
    assert all(len(digest) == 64 for name, digest in fingerprint.items() if name.endswith(".py"))
