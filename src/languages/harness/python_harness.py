# Warden's task-file harness for Python. A task sandbox loads it as module `_warden_harness` before
# it waits for its run (python_preload.py), and the run's entry file (python_entry.py) calls `_main`:
# it imports the user's task file next to the entry as module `task` and calls its
# `async def handler(payload)`.
#
# Input (stdin, one JSON document): {"mode": "validate" | "run", "payloads": [...], "nonce": "...",
#   "module": "main.py"}.
# Output: exactly one line on the real stdout: "\0WARDEN_RESULT <nonce> <json>\n", then exit 0.
#
# The verdict channel: before the task file is imported, the real stdout is duplicated onto a private
# descriptor and fd 1 is pointed at stderr, so everything the task prints (print, sys.stdout, even
# os.write(1, ...)) lands on stderr and the private descriptor carries nothing but this harness's one
# line. The nonce arrived on stdin, which the task can no longer read, so a line the task manages to
# put on the private descriptor anyway lacks it or makes the channel hold two lines; the host rejects
# both.
#
# What this channel does not do: the checks below run in the same process as the task, so a task
# written to deceive (patching inspect or json before its handler is checked) can lie about its own
# shape. The functions the verdict is written with are bound when the harness loads, before any task
# code exists in the sandbox, to make that take more than reassigning os.write. Such a lie buys
# nothing: every run of the file is sandboxed under the same limits, and each task run repeats these
# checks, so a file that lied fails its tasks.
import asyncio
import importlib.util
import inspect
import json
import os
import sys
import traceback

_MARKER = '\0WARDEN_RESULT '
_write = os.write
_exit = os._exit
_dumps = json.dumps
_PREVIEW_CHARS = 200


def _main(entry):
    config = json.loads(sys.stdin.buffer.read() or b'{}')
    nonce = str(config.get('nonce', ''))
    mode = config.get('mode', 'validate')
    payloads = config.get('payloads', [])
    module_name = os.path.basename(str(config.get('module', 'main.py')))
    private = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull, encoding='utf-8')
    task_path = os.path.join(os.path.dirname(os.path.abspath(entry)), module_name)
    # The task file is imported once per sandbox: a bytecode cache would be written for nobody.
    sys.dont_write_bytecode = True

    def emit(verdict, result_json=None):
        body = _dumps(verdict, allow_nan=False)
        if result_json is not None:
            # The result is already JSON text; splicing it in spares a second encoding of a large value.
            body = body[:-1] + ', "result": ' + result_json + '}'
        data = (_MARKER + nonce + ' ' + body + '\n').encode('utf-8')
        while data:
            data = data[_write(private, data):]
        try:
            sys.stderr.flush()
        except BaseException:  # the task may have replaced sys.stderr; the verdict is out already
            pass
        # os._exit: non-daemon threads the task left behind must not keep the run alive, nor may atexit
        # hooks it registered run after the verdict.
        _exit(0)

    handler, problem = _load(task_path)
    if problem is None:
        problem = _shape_problem(handler)
    if problem is not None:
        emit({'ok': False, 'problem': problem, 'results': []})

    if mode == 'run':
        outcome = _call(handler, payloads[0] if payloads else {}, task_path)
        if outcome['ok']:
            emit({'ok': True, 'results': []}, outcome['json'])
        emit({'ok': False, 'error': outcome['error'], 'results': []})

    results = []
    for index, payload in enumerate(payloads):
        outcome = _call(handler, payload, task_path)
        text = outcome.pop('json', None)
        if text is not None:
            outcome['preview'] = text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + '\u2026'
        outcome['index'] = index
        results.append(outcome)
        if outcome['error'] is not None and outcome['error']['kind'] in _FATAL:
            # The process is no longer in a state worth probing further (out of memory, exiting).
            break
    emit({'ok': all(r['ok'] for r in results), 'results': results})


# Failures that reject whatever payload caused them: they are not "this payload lacks a key".
_FATAL = ('memory', 'exit', 'not_json')


def _task_line(tb, task_path):
    """Line of the innermost frame in the task file, so a message points at the user's code."""
    line = None
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == task_path:
            line = lineno
    return line


def _describe(exc, task_path, kind):
    # The last line of the traceback is what users recognise ("KeyError: 'name'").
    text = ''.join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    info = {'kind': kind, 'type': type(exc).__name__, 'message': (text[-1] if text else type(exc).__name__)[:1000]}
    line = exc.lineno if isinstance(exc, SyntaxError) else _task_line(exc.__traceback__, task_path)
    if line is not None:
        info['line'] = line
    return info


def _load(task_path):
    try:
        spec = importlib.util.spec_from_file_location('task', task_path)
        if spec is None or spec.loader is None:
            return None, {'kind': 'import', 'message': 'the task file could not be loaded'}
        module = importlib.util.module_from_spec(spec)
        sys.modules['task'] = module
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        return None, _describe(exc, task_path, 'syntax')
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the verdict must still come out.
        info = _describe(exc, task_path, 'exit' if isinstance(exc, SystemExit) else 'import')
        info['traceback'] = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-2000:]
        return None, info
    if not hasattr(module, 'handler'):
        return None, {'kind': 'no_handler', 'message': 'the task file defines no `handler`'}
    return module.handler, None


def _shape_problem(handler):
    if not callable(handler):
        return {'kind': 'not_callable', 'message': '`handler` is a %s, not a function' % type(handler).__name__}
    if inspect.isasyncgenfunction(handler):
        return {'kind': 'not_async', 'message': 'it is an async generator (it yields); it must return its result'}
    if not inspect.iscoroutinefunction(handler):
        if inspect.isfunction(handler):
            return {'kind': 'not_async', 'message': 'it is defined with `def`, not `async def`'}
        return {'kind': 'not_async', 'message': 'it is a %s, not an `async def` function' % type(handler).__name__}
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind({})
    except TypeError:
        return {'kind': 'signature', 'message': '`handler%s` cannot be called with one argument (payload)' % (signature,)}
    return None


def _call(handler, payload, task_path):
    try:
        result = asyncio.run(handler(payload))
    except MemoryError as exc:
        return {'ok': False, 'error': _describe(exc, task_path, 'memory')}
    except (SystemExit, KeyboardInterrupt) as exc:
        return {'ok': False, 'error': _describe(exc, task_path, 'exit')}
    except BaseException as exc:
        return {'ok': False, 'error': _describe(exc, task_path, 'raised')}
    try:
        text = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return {'ok': False, 'error': {'kind': 'not_json', 'type': type(exc).__name__, 'message': str(exc)[:1000]}}
    return {'ok': True, 'error': None, 'json': text}

