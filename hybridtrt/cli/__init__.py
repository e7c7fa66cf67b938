"""The ``hybridtrt`` command line (``hybridtrt.cli:main``, also ``python -m hybridtrt``):
convert, inspect, run, bench, profile, compare, serve and demo, with trtexec-style shape flags.

``app`` holds the parser and the dispatch; ``conversion``, ``running`` and ``serving`` the
commands; ``flags`` the flags they share; ``common`` shape parsing, messages, exit codes, logs.
"""

from hybridtrt.cli.app import main
from hybridtrt.cli.common import parse_shapes

__all__ = ["main", "parse_shapes"]
