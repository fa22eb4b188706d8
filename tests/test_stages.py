"""The stage scripts as a user runs them: --help, and clear one-line errors with nothing left behind."""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, RUNS_ON

STAGES = ["fetch", "prepare", "encode", "pretrain", "embed", "train", "evaluate", "summarize"]


def run_stage(stage, *args, cwd=REPO):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py"), *args], cwd=cwd, env=env, capture_output=True, text=True)


def params_file(tmp_path, **sections):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_has_help(stage):
    result = run_stage(stage, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout and "--params" in result.stdout


def test_bad_params_fail_before_any_work(tmp_path):
    params = params_file(tmp_path, train={"epochs": 0})
    result = run_stage("fetch", str(tmp_path / "out.tar.gz"), "--params", str(params))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: train.epochs must be >= 1, got 0"
    assert "tensorflow" not in result.stderr  # fetch does not even import TensorFlow
    assert not (tmp_path / "out.tar.gz").exists()


def test_fetch_from_a_missing_local_copy_says_which_param(tmp_path):
    params = params_file(tmp_path, fetch={"local": str(tmp_path / "nowhere.tar.gz")})
    result = run_stage("fetch", str(tmp_path / "raw" / "a.tar.gz"), "--params", str(params))
    assert result.returncode == 1 and "fetch.local" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "raw" / "a.tar.gz").exists()


def test_prepare_refuses_a_broken_archive(tmp_path):
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"this is not a gzip file")
    result = run_stage("prepare", str(broken), str(tmp_path / "prepared"), "--params", str(params_file(tmp_path)))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "prepared").exists()


def test_embed_with_an_unloadable_module_says_how_to_use_a_local_copy(tmp_path, tiny_splits):
    for name, split in tiny_splits.items():
        split.save(tmp_path / "prepared" / f"{name}.h5")
    result = run_stage("embed", str(tmp_path / "no_such_module"), str(tmp_path / "prepared"), str(tmp_path / "features"),
                       "--params", str(params_file(tmp_path)))
    assert result.returncode == 1
    assert "cannot load the ELMo module" in result.stderr and "embed.published" in result.stderr
    assert not (tmp_path / "features").exists() or not any((tmp_path / "features").iterdir())


def test_embed_with_weights_but_no_options_says_what_is_missing(tmp_path, tiny_splits):
    from hub_fixtures import TINY_HUB_OPTIONS

    from elmo_imdb.bilm import write_random_weights

    for name, split in tiny_splits.items():
        split.save(tmp_path / "prepared" / f"{name}.h5")
    (tmp_path / "bilm").mkdir()
    write_random_weights(TINY_HUB_OPTIONS, tmp_path / "bilm" / "weights.hdf5")
    result = run_stage("embed", str(tmp_path / "bilm"), str(tmp_path / "prepared"), str(tmp_path / "features"), "--params", str(params_file(tmp_path)))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'bilm' / 'options.json'} does not exist"
    assert not (tmp_path / "features").exists()


def write_prepared_and_base(folder, tiny_splits):
    """``folder/prepared`` and ``folder/base`` as the prepare and encode stages leave them."""
    from elmo_imdb.vocabulary import Vocabulary, save_ids

    vocab = Vocabulary.build(tiny_splits["train"], 100)
    vocab.save(folder / "base" / "vocab.txt")
    for name, split in tiny_splits.items():
        split.save(folder / "prepared" / f"{name}.h5")
        save_ids(folder / "base" / f"{name}.h5", vocab.encode(split), split)


def test_train_without_features_says_to_run_embed(tmp_path, tiny_splits):
    write_prepared_and_base(tmp_path, tiny_splits)
    result = run_stage(
        "train", "bilstm", "elmo_imdb", "--prepared", str(tmp_path / "prepared"), "--base", str(tmp_path / "base"),
        "--elmo", str(tmp_path / "elmo"), "--model", str(tmp_path / "m.keras"), "--results", str(tmp_path / "r"),
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("train.h5 does not exist; run its embed stage (`dvc repro embed_imdb` or `dvc repro embed_published`)")
    assert not (tmp_path / "m.keras").exists() and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_embed_can_cache_all_three_layers_and_train_learns_their_mix(tmp_path, tiny_splits, tiny_hub_module):
    import json

    import h5py

    write_prepared_and_base(tmp_path, tiny_splits)
    params = params_file(
        tmp_path, embed={"output": "layers"}, train={"epochs": 1, "batch_size": 8, "embedding_dim": 4}
    )
    folders = {name: str(tmp_path / name) for name in ("prepared", "base", "elmo", "scratch")}
    embed = run_stage("embed", str(tiny_hub_module), folders["prepared"], folders["elmo"], "--scratch", folders["scratch"], "--params", str(params))
    assert embed.returncode == 0, embed.stderr
    with h5py.File(tmp_path / "elmo" / "train.h5") as f:
        assert f["features"].shape == (len(tiny_splits["train"]), 12, 3, 1024)
        assert f.attrs["output"] == "layers" and list(f.attrs["vector_shape"]) == [3, 1024]
    train = run_stage(
        "train", "pooled", "elmo_published", "--prepared", folders["prepared"], "--base", folders["base"], "--elmo", folders["elmo"],
        "--model", str(tmp_path / "m.keras"), "--results", str(tmp_path / "r"), "--params", str(params),
    )
    assert train.returncode == 0, train.stderr
    assert "elmo_scalar_mix" in train.stdout  # the model summary: the three layers are mixed first
    assert re.search(RUNS_ON.format("training"), train.stdout, re.MULTILINE)
    assert json.loads((tmp_path / "r" / "train.json").read_text())["epochs"] == 1 and (tmp_path / "m.keras").exists()


def test_train_with_a_bad_classifier_line_fails_before_reading_data(tmp_path):
    params = params_file(tmp_path, classifiers={"cnn": {"filters": 0, "kernel_size": 5, "hidden_units": 64, "dropout": 0.2}})
    result = run_stage("train", "cnn", "base", "--prepared", str(tmp_path / "nowhere"), "--model", str(tmp_path / "m.keras"),
                       "--results", str(tmp_path / "r"), "--params", str(params))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: classifiers.cnn.filters must be >= 1, got 0"


@pytest.mark.parametrize("output", ["elmo", "layers"])
def test_embed_runs_a_tf1_hub_format_module_end_to_end(tmp_path, tiny_splits, output):
    """google/elmo/3 is served in TF-Hub's TF1 format: the embed stage on a module of that format."""
    import h5py
    import numpy as np
    import tensorflow as tf
    import tensorflow_hub as hub
    from hub_fixtures import build_tf1_hub_module

    module = build_tf1_hub_module(tmp_path / "elmo3_like")
    for name, split in tiny_splits.items():
        split.save(tmp_path / "prepared" / f"{name}.h5")
    result = run_stage("embed", str(module), str(tmp_path / "prepared"), str(tmp_path / "features"), "--scratch", str(tmp_path / "scratch"),
                       "--metrics", str(tmp_path / "embed.json"), "--params", str(params_file(tmp_path, embed={"output": output})))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "embed.json").read_text())
    assert metrics["splits"].keys() == tiny_splits.keys() and metrics["model"] == str(module) and metrics["resumed"] is False
    assert metrics["device"] == "the CPU" and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", metrics["date"])
    for name, split in tiny_splits.items():
        assert metrics["splits"][name]["reviews"] == len(split) and metrics["splits"][name]["tokens"] == int(split.lengths.sum())
    assert metrics["reviews"] == sum(map(len, tiny_splits.values())) and metrics["tokens"] == sum(int(s.lengths.sum()) for s in tiny_splits.values())
    assert metrics["elapsed_s"] == pytest.approx(sum(s["elapsed_s"] for s in metrics["splits"].values()), abs=0.2)
    assert re.search(RUNS_ON.format("ELMo"), result.stdout, re.MULTILINE)
    split = tiny_splits["test"]
    i = int(np.argmax(split.lengths))
    n = int(split.lengths[i])
    outputs = hub.load(str(module)).signatures["tokens"](tokens=tf.constant([split.tokens[i]]), sequence_len=tf.constant([n]))
    expected = outputs["elmo"][0] if output == "elmo" else np.stack(
        [np.concatenate([outputs["word_emb"][0]] * 2, axis=-1), outputs["lstm_outputs1"][0], outputs["lstm_outputs2"][0]], axis=1)
    with h5py.File(tmp_path / "features" / "test.h5") as f:
        assert f.attrs["elmo"] == f"hub:{module}" and f["features"].shape[2:] == ((1024,) if output == "elmo" else (3, 1024))
        np.testing.assert_allclose(f["features"][i, 12 - n :], expected, rtol=2e-3, atol=2e-3)  # float16 storage
        assert not f["features"][i, : 12 - n].any()


@pytest.mark.parametrize("stage", ["pretrain", "embed", "train", "evaluate"])
def test_tensorflow_start_up_lines_stay_off_the_console(tmp_path, tiny_splits, stage):
    """Without TF_CPP_MIN_LOG_LEVEL, as a user runs it: the stage's own lines only (its device line says CPU or GPU)."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    for name, split in tiny_splits.items():
        split.save(tmp_path / "prepared" / f"{name}.h5")
    args = {  # each runs TensorFlow up to its device line, then stops on a missing input
        "pretrain": [str(tmp_path / "none.tar.gz"), str(tmp_path / "prepared"), str(tmp_path / "bilm")],
        "embed": [str(tmp_path / "no_such_module"), str(tmp_path / "prepared"), str(tmp_path / "features")],
        "train": ["bilstm", "base", "--model", str(tmp_path / "m.keras"), "--results", str(tmp_path / "r")],
        "evaluate": ["base", "--model", str(tmp_path / "m.keras"), "--results", str(tmp_path / "r")],
    }[stage]
    result = subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py"), *args, "--params", str(params_file(tmp_path))],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    noise = [line for line in lines if re.match(r"I\d{4} |WARNING: All log messages|.*failed call to cuInit", line)]
    assert lines[0].startswith("error: ") and (not noise or os.path.exists("/proc/driver/nvidia/version")), lines


def test_the_console_filter_drops_only_the_known_start_up_lines():
    from elmo_imdb.console import startup_noise

    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796211694.367918    4270 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:1796211694.368272    4270 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
        "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
        "E0000 00:00:1796211580.753996    3180 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512. Falling back to the default.",
    ]
    cuinit = "E0000 00:00:1796211707.460882    4270 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: UNKNOWN ERROR (303)"
    real = ["E0000 00:00:1796211707.460882    4270 op_kernel.cc:1] OOM when allocating tensor", "W0000 00:00:1.2 7 a.cc:3] a warning",
            "error: pretrain.tokens must be >= 1", "Traceback (most recent call last):"]
    script = (
        "import os, sys\nfrom elmo_imdb import cli\n"
        f"os.write(2, {repr(chr(10).join(noise + [cuinit] + real) + chr(10))}.encode())\n"
        "os.write(2, b'\\rpretraining:  50%')\nsys.stderr.write('\\rpretraining: 100%\\n')\nprint('error: the end', file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True)  # bytes: "\r" kept
    has_driver = os.path.exists("/proc/driver/nvidia/version")
    assert result.stderr.decode().split("\n") == [cuinit] * has_driver + real + ["\rpretraining:  50%\rpretraining: 100%", "error: the end", ""]
    assert startup_noise(has_nvidia_driver=True).fullmatch(cuinit) is None  # with a driver, cuInit failing is news
    assert startup_noise(has_nvidia_driver=False).fullmatch(cuinit)


def test_after_start_up_nothing_is_filtered_and_a_closed_stderr_is_no_error():
    script = ("import os\nfrom elmo_imdb import cli\nfrom elmo_imdb.console import show_all_output\n"
              "os.write(2, b'I0000 00:00:1.0 1 port.cc:1] during start-up\\n')\nshow_all_output()\n"
              "os.write(2, b'I0000 00:00:1.0 1 port.cc:1] after start-up\\n')\nprint('done')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.stderr.splitlines() == ["I0000 00:00:1.0 1 port.cc:1] after start-up"] and result.stdout == "done\n"
    closed = subprocess.run([sys.executable, "-c", "from elmo_imdb import cli; print('ok')"], cwd=REPO, stderr=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(2))
    assert closed.returncode == 0 and closed.stdout == "ok\n"
