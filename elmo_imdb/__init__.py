"""ELMo features for IMDB sentiment: computed once, cached in HDF5, reused by every classifier.

For notebooks: ``clf = elmo_imdb.load_classifier("bilstm-elmo_imdb-1")``, then
``clf.predict(["great film", "a waste of time"])`` (:mod:`elmo_imdb.classify`).
"""


def __getattr__(name):
    """``elmo_imdb.load_classifier``, imported on first use: ``import elmo_imdb`` (which every
    stage does) stays free of TensorFlow."""
    if name == "load_classifier":
        from elmo_imdb.classify import load_classifier

        return load_classifier
    raise AttributeError(f"module 'elmo_imdb' has no attribute {name!r}")
