"""``python -m coe_template``: the ``coe-template`` command, where the console script is not on PATH."""

from coe_template.cli import main

if __name__ == "__main__":
    main()
