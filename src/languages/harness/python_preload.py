# Run by a pre-started task sandbox before its bootstrap blocks on fd 3 (see index.ts, harnessSandbox):
# the modules the harness needs, imported while the sandbox waits in the pool instead of after the
# task's payload arrives. asyncio alone is ~25 ms of CPU here, more than the rest of a task run.
# Only the standard library: nothing of a task is in the sandbox yet, and the sandbox serves one run.
import asyncio
import importlib.util
import inspect
import json
import traceback
