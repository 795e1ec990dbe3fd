"""The ``rovbus`` command: one module per command family.

Start-up stays light: ``main`` imports a command's module only when that command runs, so
``rovbus --help`` does not pay for zmq, python-can or pydantic.
"""
