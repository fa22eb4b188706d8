"""What a stage prints is for people: TensorFlow's C++ start-up lines are kept off the console.

Importing TensorFlow prints, from C++ and before its logging is configured (so
``TF_CPP_MIN_LOG_LEVEL`` does not reach them), lines such as ``I0000 ... port.cc:153] oneDNN
custom operations are on`` and, on every machine without an NVIDIA driver,
``E0000 ... failed call to cuInit: ... UNKNOWN ERROR (303)``: an error where there is none,
above the stage's own lines (which already say whether it runs on the CPU or a GPU).

:func:`hide_tensorflow_startup_lines` puts a filter on file descriptor 2 (where C++ writes as
well as Python) for TensorFlow's start-up only: from the import to the first look for devices
(:func:`show_all_output`, which :func:`elmo_imdb.cli.print_device` calls). A thread passes
everything through except those known lines, read as whole lines; anything else, a partial
line (a progress bar's ``\\r`` updates) included, goes through at once. Real errors still show:
warnings and errors other than the ones listed, the stages' own messages, and everything
after start-up unfiltered (so a crash's last words are never held in a pipe, and a terminal
stays a terminal for progress bars); the cuInit failure too, on a machine with an NVIDIA
driver, where it means something. Not covered: oneDNN's ``DT_BOOL`` line, which some CPUs
print at the first boolean op, after start-up.
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
    """Filter file descriptor 2 until :func:`show_all_output` (call it before TensorFlow is
    imported; :func:`elmo_imdb.cli.print_device` ends the filter once TensorFlow has looked for
    its devices). Does nothing when stderr is closed or a filter is already on."""
    global _restore
    if _restore is not None or sys.stderr is None:
        return
    try:
        sys.stderr.flush()
        console = os.dup(2)
    except (OSError, ValueError):
        return
    noise = startup_noise(os.path.exists("/proc/driver/nvidia/version"))
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_pass_through, args=(read_end, console, noise), daemon=True)
    thread.start()

    def restore():  # hand fd 2 back; the thread writes what is left and ends
        sys.stderr.flush()
        os.dup2(console, 2)
        thread.join(timeout=5)

    _restore = restore
    atexit.register(show_all_output)


def show_all_output() -> None:
    """End the filter: from now on fd 2 is the console again (a no-op without a filter)."""
    global _restore
    restore, _restore = _restore, None
    if restore is not None:
        restore()


_restore = None


def _pass_through(read_end: int, console: int, noise: re.Pattern) -> None:
    """Copy ``read_end`` to ``console`` until every writer has closed it, dropping whole lines
    that ``noise`` matches. If the console cannot be written to (its reader gone), fd 2 is
    handed back at once and the rest is read and dropped, so no writer ever blocks."""
    could_be_noise = re.compile(r"(?:[IWEF]\d|WARNING: All|To enable)")
    pending, broken = b"", False
    while chunk := os.read(read_end, 1 << 16):
        if broken:
            continue
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not noise.fullmatch(line.decode(errors="replace")))
        if pending and not could_be_noise.match(pending.decode(errors="replace")):
            out, pending = out + pending, b""  # a progress bar's update: now, not at the next newline
        try:
            _write_all(console, out)
        except OSError:
            os.dup2(console, 2)
            broken = True
    try:
        _write_all(console, pending)
    except OSError:
        pass
    os.close(read_end)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
