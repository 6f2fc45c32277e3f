"""``python -m bench`` (and ``torchrun ... -m bench train ...``): the ``bench`` command."""

from bench.cli import main

if __name__ == "__main__":
    main()
