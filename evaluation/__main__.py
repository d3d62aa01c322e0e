"""``python -m evaluation``: see :mod:`evaluation.cli` (bad input: one line on stderr, exit status 2)."""

from evaluation.cli import main

if __name__ == "__main__":
    main()
