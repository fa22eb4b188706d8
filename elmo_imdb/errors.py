"""The one base class of the errors a user can fix (bad params, a damaged archive, stale data).

Stages print them as a single ``error: ...`` line and exit with status 1; anything else is a
bug and keeps its traceback. Each module defines its own subclass next to the code that
raises it.
"""


class PipelineError(Exception):
    """Bad input or state that the message tells the user how to fix."""
