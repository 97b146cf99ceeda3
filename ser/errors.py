"""One error type for bad input, and the `main` wrapper that turns it into a one-line message.

Programs under ser/bin raise `SerError` with a message that names the file, line or variable at
fault; `run_main` prints it as `prog: error: message` and exits 1, without a traceback.
"""
import os
import sys


class SerError(Exception):
    """Bad input or a failed precondition, reported to the user in one line."""


def run_main(main, argv=None):
    """Call `main(argv)`; report a SerError (or a file-system error naming its path) in one line
    and exit 1."""
    prog = os.path.basename(sys.argv[0]) or "ser"
    if prog in ("__main__.py", "-c", "-m"):
        prog = "ser"
    try:
        rc = main(argv)
    except SerError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except FileNotFoundError as e:
        print(f"{prog}: error: no such file: {e.filename}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:   # a directory given for a file, a file in the way of a directory, no permission
        if e.filename is None:
            raise
        print(f"{prog}: error: {e.filename}: {e.strerror}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(rc or 0)
