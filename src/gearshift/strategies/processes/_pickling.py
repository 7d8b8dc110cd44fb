"""How items travel to process workers: plain pickle when it can carry them, else cloudpickle.

cloudpickle runs a Python hook per object (~0.3 us an int, 100x the C pickler), so plain
pickle goes first. It is not used when it fails (lambdas, local classes) or when the bytes name
`__main__`: the workers never import the caller's script, so what lives there must travel by
value, which only cloudpickle does. The workers pickle their results the same way
(strategies/_worker.py, which imports nothing of gearshift).
"""

from __future__ import annotations

import pickle
from typing import Any

PROTOCOL = 5


def dumps(obj: Any) -> bytes:
    """`obj` pickled so that a fresh worker interpreter can load it."""
    try:
        data = pickle.dumps(obj, protocol=PROTOCOL)
    except Exception:
        data = b"__main__"  # whatever it was, cloudpickle decides
    if b"__main__" not in data:
        return data
    import cloudpickle

    return bytes(cloudpickle.dumps(obj, protocol=PROTOCOL))
