"""ELMo features for IMDB sentiment: computed once, cached in HDF5, reused by every classifier."""
