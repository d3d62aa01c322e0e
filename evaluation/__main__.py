"""``python -m evaluation``: see :mod:`evaluation.cli`."""

import sys

from evaluation.cli import main

if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as error:  # user errors: the message says what to fix
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
