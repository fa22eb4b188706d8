"""Pretraining the biLM: the corpus and its windows, the loss, the export, resuming, bad input."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from imdb_fixtures import make_tiny_archive, tiny_dataset_files

from elmo_imdb.bilm import SHIPPED_OPTIONS, load_bilm, load_options, write_random_weights
from elmo_imdb.bilm.chars import BOS_ROW, EOS_ROW, PAD_ROW
from elmo_imdb.imdb import Review, read_reviews
from elmo_imdb.lm_corpus import TARGET_UNK, CorpusError, batch_rows, build_corpus, read_corpus
from elmo_imdb.prepared import prepare_splits
from elmo_imdb.pretraining import Pretraining, PretrainingError

TINY = load_options("imdb_tiny")
WORDS = "the a film movie plot acting was is very not good bad great awful loved hated it I".split()


def unlabelled_texts(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return {f"train/unsup/{i}_0.txt": " ".join(rng.choice(WORDS, rng.integers(3, 40))) + " ." for i in range(n)}


@pytest.fixture(scope="module")
def corpus():
    texts = {**unlabelled_texts(), "train/pos/1_9.txt": "I loved it , a great film !", "train/neg/2_1.txt": "Awful ."}
    return build_corpus(texts, ["train/pos/1_9.txt", "train/neg/2_1.txt"], window=8, vocab_size=10, heldout_reviews=6, seed=0)


def trainer(corpus, tmp_path, **kwargs):
    settings = {"options": TINY, "init": None, "batch_size": 8, "n_samples": 6, "seed": 0, "scratch": tmp_path / "scratch"}
    return Pretraining(corpus, **{**settings, **kwargs})


def weights_of(training):
    return {name: value.copy() for name, value in training.model.bilm.published_weights().items()} | {
        "softmax_w": training.model.softmax_w.numpy(), "softmax_b": training.model.softmax_b.numpy()
    }


# ------------------------------------------------------------------------------------ the corpus


def test_reviews_are_cut_into_windows_from_their_end(corpus):
    texts = {**unlabelled_texts(8), "train/pos/1_9.txt": " ".join(f"w{i}" for i in range(20))}
    small = build_corpus(texts, ["train/pos/1_9.txt"], window=8, vocab_size=5, heldout_reviews=1, seed=0)
    review = [i for i, n in enumerate(small.train.lengths) if small.types[small.train.types[i, 1]].startswith("w")]
    spelled = sorted(
        ([small.types[t] for t in small.train.types[i, 1 : small.train.lengths[i] + 1]] for i in review), key=lambda s: (len(s), int(s[0][1:]))
    )
    assert spelled == [["w0", "w1", "w2", "w3"], [f"w{i}" for i in range(4, 12)], [f"w{i}" for i in range(12, 20)]]
    for i in review:  # <S>, the tokens, </S>, then padding
        n = small.train.lengths[i]
        row = small.train.types[i]
        assert row[0] == BOS_ROW and row[n + 1] == EOS_ROW and (row[n + 2 :] == PAD_ROW).all() and row.shape == (10,)


def test_the_softmax_vocabulary_is_the_most_frequent_training_tokens_and_the_rest_is_unk(corpus):
    assert corpus.vocab[:3] == ["<S>", "</S>", "<UNK>"] and len(corpus.vocab) == 13
    training_tokens = [corpus.types[t] for row, n in zip(corpus.train.types, corpus.train.lengths) for t in row[1 : n + 1]]
    counts = {token: training_tokens.count(token) for token in set(training_tokens)}
    words = corpus.vocab[3:]
    assert [counts[w] for w in words] == sorted((counts[w] for w in words), reverse=True)
    assert min(counts[w] for w in words) >= max(c for t, c in counts.items() if t not in words)
    targets = corpus.target_of_type
    for type_id, spelling in enumerate(corpus.types[3:], start=3):
        expected = corpus.vocab.index(spelling) if spelling in words else TARGET_UNK
        assert targets[type_id] == expected, spelling
    assert list(targets[[BOS_ROW, EOS_ROW]]) == [0, 1]
    assert "Awful" in corpus.types and corpus.target_of_type[corpus.types.index("Awful")] == TARGET_UNK  # inputs keep it


def test_held_out_reviews_are_unlabelled_and_never_trained_on():
    texts = {f"train/unsup/{i}_0.txt": f"u{i} was good" for i in range(10)} | {"train/pos/1_9.txt": "p1 was good"}
    small = build_corpus(texts, ["train/pos/1_9.txt"], window=8, vocab_size=3, heldout_reviews=3, seed=0)

    def reviews(windows):  # the first token of each window names its review
        return {small.types[row[1]] for row in windows.types}

    assert len(reviews(small.heldout)) == 3 and reviews(small.heldout) <= {f"u{i}" for i in range(10)}
    assert reviews(small.train) == {f"u{i}" for i in range(10)} - reviews(small.heldout) | {"p1"}
    again = build_corpus(texts, ["train/pos/1_9.txt"], window=8, vocab_size=3, heldout_reviews=3, seed=0)
    assert reviews(again.heldout) == reviews(small.heldout) and again.fingerprint == small.fingerprint  # fixed by the seed


def test_validation_and_test_text_never_reaches_the_corpus_under_another_file_name(tmp_path):
    unique = "Zyzzyva quokka marmoset axolotl"  # words no other review of the tiny archive holds
    files = tiny_dataset_files(n_per_class=10)
    reviews = [Review("train", 1 if "/pos/" in n else 0, n, files[n].decode()) for n in files if n.startswith(("train/pos/", "train/neg/"))]
    val_name = prepare_splits(reviews + [Review("test", 1, "test/pos/0_9.txt", "x")], maxlen=16, val_size=4, seed=0)["val"].names[0]
    copies = {
        "test/pos/500_9.txt": f"{unique} , a test review .".encode(),
        # the same texts under other names: as stored, and with other markup, entities and spacing
        "train/unsup/9001_0.txt": f"{unique} , a test review .".encode(),
        "train/unsup/9002_0.txt": f"  {unique.replace(' ', '<br /><br />')} ,\ta test&#32;review .".encode(),
        "train/pos/9003_9.txt": f"{unique} , a test review .".encode(),  # lands in train or val: never in the corpus
        "train/unsup/9004_0.txt": files[val_name],
    }
    archive = make_tiny_archive(tmp_path / "dup.tar.gz", n_per_class=10, extra_files=copies)
    reviews, _ = read_reviews(archive)
    splits = prepare_splits(reviews, maxlen=16, val_size=4, seed=0)
    assert val_name in splits["val"].names
    splits["train"].save(tmp_path / "train.h5")
    corpus = read_corpus(archive, tmp_path / "train.h5", window=8, vocab_size=5, heldout_reviews=2, seed=0)
    assert not set(unique.split()) & set(corpus.types)  # neither trained on nor held out
    # Against the same archive without the three unlabelled copies: exactly those three more dropped, same corpus.
    plain_files = {name: content for name, content in copies.items() if not name.startswith("train/unsup/")}
    plain = read_corpus(make_tiny_archive(tmp_path / "plain.tar.gz", n_per_class=10, extra_files=plain_files),
                        tmp_path / "train.h5", window=8, vocab_size=5, heldout_reviews=2, seed=0)
    assert corpus.dropped["as_validation_or_test"] == plain.dropped["as_validation_or_test"] + 3
    assert corpus.fingerprint == plain.fingerprint


def test_training_reviews_with_the_text_of_a_held_out_review_are_dropped():
    texts = {f"train/unsup/{i}_0.txt": f"u{i} was good" for i in range(10)}
    texts |= {f"train/unsup/{100 + i}_0.txt": f"u{i}  was <br /> good" for i in range(10)}  # each review twice
    small = build_corpus(texts, [], window=8, vocab_size=3, heldout_reviews=3, seed=0)

    def reviews(windows):  # the first token of each window names its review
        return {small.types[row[1]] for row in windows.types}

    assert len(reviews(small.heldout)) == 3 and not reviews(small.heldout) & reviews(small.train)  # 3 texts held out,
    assert reviews(small.heldout) | reviews(small.train) == {f"u{i}" for i in range(10)}
    assert small.dropped == {"as_validation_or_test": 0, "as_heldout": 3}  # so their 3 twins are dropped


def test_batches_are_a_function_of_the_step(corpus):
    n = len(corpus.train)
    first_epoch = np.concatenate([batch_rows(step, 8, n, seed=0) for step in range(n // 8)])
    assert len(set(first_epoch)) == len(first_epoch)  # a permutation: no window twice in an epoch
    np.testing.assert_array_equal(batch_rows(3, 8, n, 0), batch_rows(3, 8, n, 0))
    assert not np.array_equal(batch_rows(3, 8, n, 0), batch_rows(3, 8, n, 1))


@pytest.mark.parametrize(
    "texts, kwargs, message",
    [
        ({"train/pos/1_9.txt": "Good ."}, {}, "the archive holds no unlabelled reviews"),
        (unlabelled_texts(5), {"heldout_reviews": 5}, "pretrain.heldout_reviews=5 must be at least 1 and leave"),
        (unlabelled_texts(5), {"vocab_size": 1000}, "pretrain.vocab_size=1000 exceeds the"),
    ],
)
def test_a_corpus_that_cannot_work_is_refused_naming_the_key(texts, kwargs, message):
    settings = {"window": 8, "vocab_size": 5, "heldout_reviews": 1, "seed": 0, **kwargs}
    with pytest.raises(CorpusError, match=re.escape(message)):
        build_corpus(texts, [name for name in texts if "unsup" not in name], **settings)


# ------------------------------------------------------------------------------------ training


def test_training_lowers_the_loss_and_held_out_perplexity(corpus, tmp_path):
    training = trainer(corpus, tmp_path)
    before = training.heldout_perplexity()
    training.run(tokens=3000, eval_every=1000)
    after = training.heldout_perplexity()
    assert after[0] < 0.8 * before[0] and after[1] < 0.8 * before[1]  # from about uniform (13 classes)
    curve = training.history
    assert [p["tokens"] // 1000 for p in curve] == [1, 2, 3] and curve[-1]["tokens"] >= 3000
    assert curve[-1]["heldout_perplexity_forward"] == pytest.approx(after[0], rel=1e-3)


def test_the_exported_files_load_and_give_the_training_models_outputs(corpus, tmp_path):
    training = trainer(corpus, tmp_path)
    training.run(tokens=1000, eval_every=1000)
    folder = training.export(tmp_path / "bilm")
    assert json.loads((folder / "options.json").read_text()) == TINY
    assert (folder / "vocab.txt").read_text().splitlines() == corpus.vocab
    loaded = load_bilm(folder / "options.json", folder / "weights.hdf5")
    tokens = tf.constant([["I", "loved", "it", "!"], ["Awful", ".", "", ""]])
    lengths = tf.constant([4, 2])
    for name, value in loaded(tokens, lengths).items():
        np.testing.assert_allclose(value, training.model.bilm(tokens, lengths)[name], atol=1e-5, err_msg=name)
    assert not np.allclose(loaded.published_weights()["CNN_proj/W_proj"], trainer(corpus, tmp_path / "new").model.bilm.published_weights()["CNN_proj/W_proj"])


def test_the_training_model_feeds_the_softmax_the_biLM_outputs(corpus, tmp_path):
    """The states the losses read are the biLM's own outputs: position t forwards predicts t + 1."""
    training = trainer(corpus, tmp_path)
    types, lengths = corpus.train.types[:2, :10], corpus.train.lengths[:2]
    (forward, forward_targets), (backward, backward_targets) = training.model.top_states(tf.constant(types), tf.constant(lengths))
    spelled = [[corpus.types[t] for t in row[1 : n + 1]] for row, n in zip(types, lengths)]
    width = max(len(s) for s in spelled)
    top = training.model.bilm(tf.constant([s + [""] * (width - len(s)) for s in spelled]), lengths)["lstm_outputs2"]
    projection = TINY["lstm"]["projection_dim"]
    n0 = int(lengths[0])
    np.testing.assert_allclose(forward[1 : n0 + 1], top[0, :n0, :projection], atol=1e-6)  # after tokens 1..n
    np.testing.assert_allclose(backward[:n0], top[0, :n0, projection:], atol=1e-6)  # at tokens 1..n
    np.testing.assert_array_equal(forward_targets[: n0 + 1], corpus.target_of_type[types[0, 1 : n0 + 2]])  # tokens 1..n, </S>
    np.testing.assert_array_equal(backward_targets[: n0 + 1], corpus.target_of_type[types[0, : n0 + 1]])  # <S>, tokens 1..n
    assert len(forward_targets) == len(backward_targets) == int(lengths.sum()) + 2


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(corpus, tmp_path):
    tf.config.experimental.enable_op_determinism()
    straight = trainer(corpus, tmp_path / "straight")
    straight.run(tokens=2000, eval_every=1000)

    first = trainer(corpus, tmp_path / "resumed")
    first.run(tokens=900, eval_every=1000)  # stops between checkpoints of the straight run
    first.save()
    second = trainer(corpus, tmp_path / "resumed")
    assert second.resume(10**9).startswith(f"resuming at step {int(first.step)}")
    second.run(tokens=2000, eval_every=1000)
    assert int(second.step) == int(straight.step)
    for name, value in weights_of(straight).items():
        np.testing.assert_array_equal(weights_of(second)[name], value, err_msg=name)  # bit for bit
    # the curve: the end of the shorter budget, then the same points as the uninterrupted run
    assert [p["tokens"] for p in second.history] == [int(first.tokens_seen)] + [p["tokens"] for p in straight.history]
    assert second.history[1:] == [{**p, "elapsed_s": q["elapsed_s"], "tokens_per_s": q["tokens_per_s"]} for p, q in zip(straight.history, second.history[1:])]


def test_a_finished_run_run_again_writes_the_same_metrics_curve_and_weights(corpus, tmp_path):
    """What `dvc repro -f pretrain` does: outputs deleted, the stage run again on its finished checkpoint."""
    tf.config.experimental.enable_op_determinism()
    first = trainer(corpus, tmp_path)
    first.run(tokens=2000, eval_every=1000, metrics=tmp_path / "first")
    again = trainer(corpus, tmp_path)
    assert again.resume(2000) == f"resuming at step {int(first.step)}, {int(first.tokens_seen):,} tokens seen"
    again.run(tokens=2000, eval_every=1000, metrics=tmp_path / "again")
    assert int(again.step) == int(first.step)  # no further step
    for name in ("metrics.json", "curve.tsv"):
        assert (tmp_path / "again" / name).read_text() == (tmp_path / "first" / name).read_text()
    for name, value in weights_of(first).items():
        np.testing.assert_array_equal(weights_of(again)[name], value, err_msg=name)


def test_a_lower_budget_starts_over_and_gives_that_budgets_weights(corpus, tmp_path):
    tf.config.experimental.enable_op_determinism()
    longer = trainer(corpus, tmp_path / "longer")
    longer.run(tokens=2000, eval_every=1000)
    shorter = trainer(corpus, tmp_path / "shorter")
    shorter.run(tokens=900, eval_every=1000)
    lowered = trainer(corpus, tmp_path / "longer")
    message = lowered.resume(900)
    assert message.startswith(f"starting over, the checkpoint in {tmp_path / 'longer' / 'scratch'} cannot be resumed: "
                              f"it has trained on {int(longer.tokens_seen):,} tokens, past pretrain.tokens=900")
    lowered.run(tokens=900, eval_every=1000)
    assert int(lowered.step) == int(shorter.step)
    for name, value in weights_of(shorter).items():
        np.testing.assert_array_equal(weights_of(lowered)[name], value, err_msg=name)
    # the budget the checkpoint's last step reached is its own: resumed, not retrained
    assert trainer(corpus, tmp_path / "longer").resume(int(lowered.tokens_seen)).startswith("resuming at step")


def test_a_checkpoint_write_killed_midway_neither_stops_the_resume_nor_stays(corpus, tmp_path):
    """A SIGKILL inside checkpoint.write leaves TensorFlow's ``ckpt-N_temp/`` folder of shards
    (the record still names the checkpoint before it): the run resumes and the folder goes."""
    tf.config.experimental.enable_op_determinism()
    training = trainer(corpus, tmp_path)
    training.run(tokens=500, eval_every=1000)
    training.save()
    step, scratch = int(training.step), tmp_path / "scratch"
    killed = scratch / "ckpt-3_temp"
    (killed / "part-00000-of-00001.data-00000-of-00001").mkdir(parents=True)  # shards half-written, a folder among them
    (killed / "part-00000-of-00001.index").write_bytes(b"\x00junk")
    (scratch / "ckpt-3.index").write_bytes(b"junk")  # the merge killed after its index
    resumed = trainer(corpus, tmp_path)
    assert resumed.resume(10**9) == f"resuming at step {step}, {int(training.tokens_seen):,} tokens seen"
    assert not killed.exists() and not (scratch / "ckpt-3.index").exists()
    resumed.run(tokens=1000, eval_every=1000)
    end = int(resumed.step)
    assert sorted(p.name for p in scratch.glob("ckpt-*")) == [f"ckpt-{end}.data-00000-of-00001", f"ckpt-{end}.index"]


def test_a_loss_that_becomes_nan_stops_the_run_before_a_checkpoint_holds_it(corpus, tmp_path):
    """A diverged biLM (injected: one weight made NaN) stops at the first step whose loss is
    not finite, in one line; the record keeps naming the last finite checkpoint."""
    training = trainer(corpus, tmp_path)
    training.run(tokens=500, eval_every=1000)
    training.save()
    saved = json.loads((tmp_path / "scratch" / "progress.json").read_text())["progress"]["checkpoint"]
    step = int(training.step)
    training.model.softmax_b.assign(tf.fill(training.model.softmax_b.shape, np.nan))
    with pytest.raises(PretrainingError) as e:
        training.run(tokens=2000, eval_every=100)  # an evaluation, and a save, after every step
    assert str(e.value) == (
        f"the training loss became nan at step {step + 1}: the biLM diverged; nothing was exported and no checkpoint "
        "holds the diverged weights; a resume would diverge again, so change pretrain's settings (seed, batch_size "
        "or init) and run again"
    )
    assert json.loads((tmp_path / "scratch" / "progress.json").read_text())["progress"]["checkpoint"] == saved
    resumed = trainer(corpus, tmp_path)
    assert resumed.resume(10**9).startswith(f"resuming at step {step}")
    assert np.isfinite(resumed.model.softmax_b.numpy()).all()


def test_a_checkpoint_of_other_settings_is_not_resumed_and_says_why(corpus, tmp_path):
    training = trainer(corpus, tmp_path)
    training.run(tokens=500, eval_every=1000)
    training.save()
    refused = f"starting over, the checkpoint in {tmp_path / 'scratch'} cannot be resumed: it was made with other "
    assert trainer(corpus, tmp_path, batch_size=4).resume(10**9) == refused + "batch_size 8 (now 4)"
    assert not list((tmp_path / "scratch").glob("ckpt-*")) and not (tmp_path / "scratch" / "progress.json").exists()
    training.save()
    other = build_corpus(unlabelled_texts(seed=1), [], window=8, vocab_size=10, heldout_reviews=6, seed=0)
    assert trainer(other, tmp_path).resume(10**9) == refused + "corpus"
    training.save()
    assert trainer(corpus, tmp_path).resume(10**9).startswith("resuming at step")


def test_a_checkpoint_of_other_code_is_not_resumed_and_names_the_files(corpus, tmp_path, monkeypatch):
    """Killed under one version of the training code, run again under another: the run starts
    over (one line naming the changed file), never finishing one version's training with the other."""
    import elmo_imdb.pretraining as pretraining

    training = trainer(corpus, tmp_path)
    training.run(tokens=500, eval_every=1000)
    training.save()
    fingerprint = pretraining.code_fingerprint(pretraining.TRAINING_CODE)
    assert {"elmo_imdb/pretraining.py", "elmo_imdb/pretrain_step.py", "elmo_imdb/bilm/lstm.py", "elmo_imdb/lm_corpus.py", "tensorflow"} <= fingerprint.keys()
    changed = {**fingerprint, "elmo_imdb/bilm/lstm.py": "0" * 64}
    monkeypatch.setattr(pretraining, "code_fingerprint", lambda modules: changed)
    assert trainer(corpus, tmp_path).resume(10**9) == (
        f"starting over, the checkpoint in {tmp_path / 'scratch'} cannot be resumed: it was made with other code (elmo_imdb/bilm/lstm.py)"
    )
    again = trainer(corpus, tmp_path)
    again.run(tokens=500, eval_every=1000)
    assert int(again.step) == int(training.step)  # trained from the start, not resumed


def test_a_record_whose_checkpoint_files_are_gone_starts_over(corpus, tmp_path):
    training = trainer(corpus, tmp_path)
    training.run(tokens=500, eval_every=1000)
    for data in (tmp_path / "scratch").glob("ckpt-*.data-*"):
        data.unlink()
    message = trainer(corpus, tmp_path).resume(10**9)
    assert message.startswith(f"starting over, the checkpoint in {tmp_path / 'scratch'} cannot be resumed: its files are unreadable")


def test_init_continues_from_published_weights_and_refuses_ones_that_do_not_fit(corpus, tmp_path):
    weights = write_random_weights(TINY, tmp_path / "w.hdf5", seed=7)
    training = trainer(corpus, tmp_path, init=str(weights))
    start = load_bilm(SHIPPED_OPTIONS["imdb_tiny"], weights).published_weights()
    for name, value in training.model.bilm.published_weights().items():
        np.testing.assert_allclose(value, start[name], atol=1e-6, err_msg=name)
    wider = json.loads(json.dumps(TINY))
    wider["lstm"]["dim"] = 64
    with pytest.raises(PretrainingError, match=r"pretrain.init: .*w64.hdf5 does not fit pretrain.options: .*W_0"):
        trainer(corpus, tmp_path, init=str(write_random_weights(wider, tmp_path / "w64.hdf5")))
    with pytest.raises(PretrainingError, match=r"pretrain.init: .*nowhere.hdf5 does not exist"):
        trainer(corpus, tmp_path, init=str(tmp_path / "nowhere.hdf5"))
    with pytest.raises(PretrainingError, match=r"pretrain.n_samples=13 must be smaller than the softmax vocabulary \(13\)"):
        trainer(corpus, tmp_path, n_samples=13)


def test_share_cores_gives_each_op_half_the_cores_and_runs_two_at_once():
    """In a fresh process (the setting must come before TensorFlow's first op), as the stage does."""
    code = (
        "import tensorflow as tf; from elmo_imdb.pretraining import share_cores_between_directions, usable_cores;"
        "share_cores_between_directions(); tf.constant(1.0) + 1.0;"
        "print(usable_cores(), tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    cores, intra, inter = map(int, out[-3:])
    assert intra == max(1, cores // 2) and inter == max(2, cores)
