# Warden's Python bootstrap: started ahead of time inside the sandbox, it blocks on fd 3 until a run
# hands it the program, writes the files into the working dir and runs the entry file as __main__.
#
# Load-time compile errors (SyntaxError, IndentationError, TabError, null bytes) are reported on
# stderr as "\0WARDEN_COMPILE <nonce> <json>\n", then exit 1, before any user code runs. The nonce is
# the run's secret from the payload head; it lives only in _load's frame, gone before the user's code
# starts, so a program printing the same line cannot make its run pass for a compile error.
import os, sys

# Started with -S: site's start-up work (~3 ms of CPU: .pth files, sitecustomize) is skipped, and
# what a program can see of it is redone here: the system's dist-packages on sys.path, exit/quit/help.
import builtins as _b, _sitebuiltins as _sb
for _p in ('/usr/local/lib/python%d.%d/dist-packages' % sys.version_info[:2], '/usr/lib/python3/dist-packages',
           '/usr/lib/python%d.%d/dist-packages' % sys.version_info[:2]):
    if os.path.isdir(_p):
        sys.path.append(_p)
_b.exit = _sb.Quitter('exit', 'Ctrl-D (i.e. EOF)')
_b.quit = _sb.Quitter('quit', 'Ctrl-D (i.e. EOF)')
_b.help = _sb._Helper()
del _b, _sb, _p


def _load():
    chunks = []
    while True:
        c = os.read(3, 1 << 20)
        if not c:
            break
        chunks.append(c)
    os.close(3)
    # Payload: "nonce\0main\0argc\0argsize…\0name\0size…\n" then the arguments' and the files'
    # bytes (no json: it imports re, ~7 ms).
    head, _, body = b''.join(chunks).partition(b'\n')
    parts = head.decode().split('\0')
    argc = int(parts[2])
    at = 0
    args = []
    for size in parts[3:3 + argc]:
        args.append(body[at:at + int(size)].decode('utf-8', 'surrogateescape'))
        at += int(size)
    for i in range(3 + argc, len(parts), 2):
        size = int(parts[i + 1])
        folder = os.path.dirname(parts[i])
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(parts[i], 'wb') as f:
            f.write(body[at:at + size])
        at += size
    main = os.path.abspath(parts[1])
    with open(main, encoding='utf-8') as f:
        source = f.read()
    try:
        return main, args, compile(source, main, 'exec')
    except (SyntaxError, ValueError) as e:
        import json
        syntax = isinstance(e, SyntaxError)
        report = {
            'line': e.lineno if syntax else None,
            'column': e.offset if syntax and e.lineno else None,
            'message': type(e).__name__ + ': ' + (e.msg if syntax else str(e)),
        }
        data = ('\0WARDEN_COMPILE ' + parts[0] + ' ' + json.dumps(report) + '\n').encode()
        while data:
            data = data[os.write(2, data):]
        os._exit(1)


_main, _args, _code = _load()
sys.argv = [_main, *_args]
sys.path.insert(0, os.path.dirname(_main))
_g = {'__name__': '__main__', '__file__': _main, '__builtins__': __builtins__}
_status = 0
try:
    exec(_code, _g)
except SystemExit as _e:
    # As the interpreter does: None is 0, an int is the status, anything else is printed.
    if _e.code is None:
        _status = 0
    elif isinstance(_e.code, int):
        _status = _e.code
    else:
        print(_e.code, file=sys.stderr)
        _status = 1
except BaseException as _e:
    import traceback
    # Drop the bootstrap's own frame so the traceback starts in the user's file.
    traceback.print_exception(type(_e), _e, _e.__traceback__.tb_next)
    _status = 1
# The rest of a normal shutdown that a program can observe: non-daemon threads, atexit handlers,
# buffered output. Tearing down the interpreter itself (~2 ms) is pointless in a throw-away sandbox.
if 'threading' in sys.modules:
    sys.modules['threading']._shutdown()
import atexit
atexit._run_exitfuncs()
for _s in (sys.stdout, sys.stderr):
    try:
        _s.flush()
    except Exception:
        pass
os._exit(_status & 0xFF)
