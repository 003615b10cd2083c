"""``python -m genforge``: the CLI (what ``torchrun -m genforge`` and ``--nproc`` start)."""

from genforge.app.cli import main

if __name__ == "__main__":
    main()
