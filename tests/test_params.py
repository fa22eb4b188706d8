import re

import pytest
import yaml

from conftest import REPO
from elmo_imdb.params import ParamsError, load_params


def write(tmp_path, edit):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_repo_params_are_valid_and_match_the_seed():
    p = load_params(REPO / "params.yaml")
    assert (p.prepare.maxlen, p.encode.max_features, p.train.embedding_dim, p.train.batch_size) == (80, 20000, 300, 100)
    assert p.classifiers["bilstm"] == {"lstm_units": 128, "dropout": 0.2, "recurrent_dropout": 0.2}
    assert p.embed.published == "https://tfhub.dev/google/elmo/3" and p.embed.dtype == "float16"
    assert p.variants == ["base", "elmo_published", "elmo_imdb"] and p.pretrain.options == "imdb_small"
    assert len(p.seeds) >= 3  # accuracy is a mean over seeds


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r["train"].update(lstm_units=64), "unknown parameter train.lstm_units"),
        (lambda r: r["classifiers"].update(pooled=None), "classifiers.pooled: expected a mapping"),
        (lambda r: r.update(classifiers=["bilstm"]), "classifiers: expected a mapping"),
        (lambda r: r.update(trian={}), "unknown parameter trian"),
        (lambda r: r["train"].update(epochs="ten"), "train.epochs must be int, got str 'ten'"),
        (lambda r: r["train"].update(epochs=2.5), "train.epochs must be int, got float"),
        (lambda r: r["train"].update(epochs=True), "train.epochs must be int, got bool"),
        (lambda r: r["prepare"].update(maxlen=0), "prepare.maxlen must be >= 1, got 0"),
        (lambda r: r["embed"].update(dtype="float64"), "embed.dtype must be one of float16, float32; got 'float64'"),
        (lambda r: r.update(variants=["base", "elmo"]), "variants must be one of base, elmo_published, elmo_imdb; got 'elmo'"),
        (lambda r: r.update(variants=[]), "variants: expected a non-empty list, got []"),
        (lambda r: r.update(variants=["base", "base"]), "variants: lists a value twice"),
        (lambda r: r.update(seeds=[]), "seeds: expected a non-empty list, got []"),
        (lambda r: r.update(seeds=[1, 1]), "seeds: lists a value twice: [1, 1]"),
        (lambda r: r.update(seeds=[1, -2]), "seeds must be >= 0, got -2"),
        (lambda r: r.update(seeds=[1, "2"]), "seeds must be int, got str '2'"),
        (lambda r: r["train"].update(seed=42), "unknown parameter train.seed (known here: embedding_dim, "),
        (lambda r: r["embed"].update(google=r["embed"].pop("published")), "unknown parameter embed.google; it is now embed.published"),
        (lambda r: r["pretrain"].update(vocab_size=0), "pretrain.vocab_size must be >= 1, got 0"),
        (lambda r: r["pretrain"].update(init=5), "pretrain.init must be str, got int 5"),
        (lambda r: r["train"].pop("patience"), "missing parameter train.patience"),
        (lambda r: r.pop("encode"), "missing parameter encode"),
        (lambda r: r["embed"].update(published=None), "embed.published must be set"),
        (lambda r: r.update(train=[1, 2]), "train: expected a mapping"),
    ],
)
def test_bad_params_name_the_key(tmp_path, edit, message):
    with pytest.raises(ParamsError, match=re.escape(message)):
        load_params(write(tmp_path, edit))


def test_nullable_params_accept_null_and_ints_pass_as_floats(tmp_path):
    def edit(r):
        r["fetch"]["sha256"] = None
        r["train"]["learning_rate"] = 1

    p = load_params(write(tmp_path, edit))
    assert p.fetch.sha256 is None and p.train.learning_rate == 1.0 and isinstance(p.train.learning_rate, float)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ParamsError, match="no such parameters file"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
