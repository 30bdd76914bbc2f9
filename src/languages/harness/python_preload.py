# Run by every Python task sandbox before its bootstrap blocks on fd 3 (see index.ts, harnessSandbox):
# loads the harness (the source is in _WARDEN_HARNESS, prepended by the host) with the modules it
# imports, so a pre-started sandbox has them ready when a run arrives instead of importing them after
# the payload (asyncio alone is ~25 ms of CPU here, more than the rest of a task run). Nothing of a
# task is in the sandbox yet, and the sandbox still serves exactly one run.
import sys as _sys
import types as _types

_harness = _types.ModuleType('_warden_harness')
exec(compile(_WARDEN_HARNESS, 'python_harness.py', 'exec'), _harness.__dict__)
_sys.modules['_warden_harness'] = _harness
del _sys, _types, _harness, _WARDEN_HARNESS
