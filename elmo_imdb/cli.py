"""What every stage script shares: its argument parser, how it reports a failure, what it prints.

A stage fails with one line on stderr that says what is wrong and what to do, and a non-zero
exit status; tracebacks are kept for bugs, not for bad input.

Importing this module keeps TensorFlow's C++ start-up lines off the console
(:mod:`elmo_imdb.console`), so every stage imports it before anything that imports TensorFlow
or Keras.
"""

from __future__ import annotations

import argparse
import errno
import sys

from elmo_imdb.console import hide_tensorflow_startup_lines, show_all_output
from elmo_imdb.errors import PipelineError
from elmo_imdb.params import load_params

hide_tensorflow_startup_lines()


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="parameters file (default: %(default)s)")
    return p


def print_device(work: str) -> None:
    """Say where TensorFlow will run ``work``: the GPUs it sees, or the CPU."""
    print(f"{work} runs on {device()}")


def device() -> str:
    """Where TensorFlow runs in this process: the GPUs it sees, or ``the CPU``."""
    import tensorflow as tf  # here, not at the top: stages without TensorFlow stay fast to start

    gpus = ", ".join(gpu.name for gpu in tf.config.list_logical_devices("GPU")) or "the CPU"
    show_all_output()  # TensorFlow's start-up is over: nothing is filtered from here on
    return gpus


#: What to do about the I/O errors a stage reports in one line (any other OSError is a bug).
IO_ADVICE = {
    errno.ENOSPC: "make room there and run again",
    errno.EDQUOT: "make room within your quota and run again",
    errno.EROFS: "the file system is read-only: point the stage at a writable folder",
    errno.EIO: "the disk reported an I/O error: check it, then run again",
}


def run(main, args: argparse.Namespace) -> None:
    """Validate the parameters, then call ``main(args, params)`` through :func:`guarded`."""
    guarded(lambda: main(args, load_params(args.params)))


def guarded(work, *args) -> None:
    """Call ``work(*args)``; turn a :class:`PipelineError`, or an I/O error of :data:`IO_ADVICE`
    (a full disk, say), into ``error: ...`` on stderr and exit status 1. Whatever the stage was
    writing has been removed by then: the stages write through :mod:`elmo_imdb.atomic` and
    resumable work keeps only what its record counts."""
    try:
        work(*args)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        if e.errno not in IO_ADVICE:
            raise
        print(f"error: {io_error_line(e)}", file=sys.stderr)
        sys.exit(1)


def io_error_line(e: OSError) -> str:
    """``writing PATH failed: No space left on device; make room there and run again``."""
    where = f"writing {e.filename} failed" if e.filename else "a write failed"
    return f"{where}: {e.strerror}; {IO_ADVICE.get(e.errno, 'check the disk and run again')}"
