"""What a stage prints is for people: TensorFlow's C++ start-up lines are kept off the console.

Importing TensorFlow prints, from C++ and before its logging is configured (so
``TF_CPP_MIN_LOG_LEVEL`` does not reach them), lines such as ``I0000 ... port.cc:153] oneDNN
custom operations are on`` and, on every machine without an NVIDIA driver,
``E0000 ... failed call to cuInit: ... UNKNOWN ERROR (303)``: an error where there is none,
above the stage's own lines (which already say whether it runs on the CPU or a GPU).

:func:`hide_tensorflow_startup_lines` puts a filter on file descriptor 2 (where C++ writes as
well as Python): a thread passes everything through except those known lines, read as whole
lines; anything else, a partial line (a progress bar's ``\\r`` updates) included, goes through
at once. Real errors still show: warnings and errors other than the ones listed, Python's
tracebacks and the stages' own messages; the cuInit failure too, on a machine with an NVIDIA
driver, where it means something.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

_LOG_PREFIX = r"[IWEF]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] "  # absl's: severity, date, time, thread, file:line
_STARTUP = [
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    rf"I\d{{4}} [\d:.]+\s+\d+ [\w.]+:\d+\] .*",  # information, not problems: oneDNN on, no CUDA driver, CPU features
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.",
    rf"{_LOG_PREFIX}oneDNN supports DT_BOOL only on platforms with AVX-512\. Falling back .*",
]
_NO_GPU = [rf"{_LOG_PREFIX}failed call to cuInit: .*"]


def startup_noise(has_nvidia_driver: bool) -> re.Pattern:
    """The lines :func:`hide_tensorflow_startup_lines` drops (the cuInit failure only without a driver)."""
    return re.compile("|".join(_STARTUP + ([] if has_nvidia_driver else _NO_GPU)))


def hide_tensorflow_startup_lines() -> None:
    """Filter file descriptor 2 for the rest of the process (call it before TensorFlow is imported)."""
    if getattr(hide_tensorflow_startup_lines, "installed", False):
        return
    hide_tensorflow_startup_lines.installed = True
    noise = startup_noise(os.path.exists("/proc/driver/nvidia/version"))
    sys.stderr.flush()
    console = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_pass_through, args=(read_end, console, noise), daemon=True)
    thread.start()

    def restore():  # at exit: hand fd 2 back, let the thread write what is left
        sys.stderr.flush()
        os.dup2(console, 2)
        thread.join(timeout=5)

    atexit.register(restore)


def _pass_through(read_end: int, console: int, noise: re.Pattern) -> None:
    """Copy ``read_end`` to ``console`` until every writer has closed it, dropping whole lines that ``noise`` matches."""
    could_be_noise = re.compile(rf"(?:[IWEF]\d|WARNING: All|To enable)")
    pending = b""
    while chunk := os.read(read_end, 1 << 16):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not noise.fullmatch(line.decode(errors="replace")))
        if pending and not could_be_noise.match(pending.decode(errors="replace")):
            out, pending = out + pending, b""  # a progress bar's update: now, not at the next newline
        if out:
            os.write(console, out)
    if pending:
        os.write(console, pending)
