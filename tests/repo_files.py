"""Load a benchmark or script of the repository as a module, for tests (they are files, not a package)."""
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load(relative: str, name: str) -> ModuleType:
    """``ROOT / relative`` imported as module ``name`` (registered in sys.modules, so dataclasses and pickling work)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
