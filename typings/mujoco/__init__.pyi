# MuJoCo's Python API lives in compiled modules that ship no type stubs, so
# pyright cannot see MjModel, MjData, mj_* or the enums. Type checking treats
# the package as untyped rather than report every use.
from typing import Any

def __getattr__(name: str) -> Any: ...
