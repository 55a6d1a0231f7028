"""Error kinds the CLI maps to exit codes: bad input is exit 2 with one line, never a traceback."""


class UsageError(Exception):
    """Bad input from the user (names, combinations, files): one line, exit code 2."""


class CellError(Exception):
    """A cell cannot run or failed inside a framework: the cell is recorded as failed, the run goes on."""


class CellSkipped(Exception):
    """A cell that cannot run on this machine (e.g. CUDA without a GPU): recorded as skipped with the reason."""
