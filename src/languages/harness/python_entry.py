# The entry file of a Python task run: the harness was loaded when the sandbox started (python_preload.py).
import sys

sys.modules['_warden_harness']._main(__file__)
