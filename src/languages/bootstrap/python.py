# Warden's Python bootstrap: started ahead of time inside the sandbox, it blocks on fd 3 until a run
# hands it the program, writes the files into the working dir and runs the entry file as __main__.
import os, sys, json
_chunks = []
while True:
    _c = os.read(3, 1 << 20)
    if not _c:
        break
    _chunks.append(_c)
os.close(3)
_p = json.loads(b''.join(_chunks))
for _name, _text in _p['files'].items():
    with open(_name, 'w', encoding='utf-8') as _f:
        _f.write(_text)
_main = os.path.abspath(_p['main'])
sys.argv = [_main]
sys.path.insert(0, os.path.dirname(_main))
with open(_main, encoding='utf-8') as _f:
    _code = compile(_f.read(), _main, 'exec')
del _chunks, _c, _p, _name, _text, _f
_g = {'__name__': '__main__', '__file__': _main, '__builtins__': __builtins__}
try:
    exec(_code, _g)
except SystemExit:
    raise
except BaseException as _e:
    import traceback
    # Drop the bootstrap's own frame so the traceback starts in the user's file.
    traceback.print_exception(type(_e), _e, _e.__traceback__.tb_next)
    sys.exit(1)
