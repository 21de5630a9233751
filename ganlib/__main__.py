"""``python -m ganlib train|sample|fid ...`` (and ``torchrun ... -m ganlib train ...``): see ``ganlib.cli``."""
from ganlib.cli import main

if __name__ == "__main__":
    main()
