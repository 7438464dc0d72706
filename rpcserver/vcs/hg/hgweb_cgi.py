"""Mercurial's hgweb for one request, as a CGI program; run by ``hgweb.run`` (it imports
nothing of rpcserver, so that no worker ever imports Mercurial)::

    python -I hgweb_cgi.py <repository> [section.name=value ...]

The request is in the environment (RFC 3875) and on stdin, the answer goes to stdout.
Configuration is the server's hgrc (``HGRCPATH``; a repository's own is never read:
``HGRCSKIPREPO``) and the ``section.name=value`` pairs of this request. When the environment
holds push rules, the server's push hooks (``push_hook.py``, loaded by path) are installed too;
they are the only hooks hg runs.
"""

import importlib.util
import os
import sys
from pathlib import Path

RULES_ENV = "RPCSERVER_PUSH_RULES"


def _push_hooks() -> dict:
    path = Path(__file__).with_name("push_hook.py")
    spec = importlib.util.spec_from_file_location("rpcserver_hg_push_hook", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.HOOKS)


def main(argv: list[str]) -> None:
    from mercurial import demandimport

    demandimport.enable()  # as hg's own script: a module loads when first used (half the start)
    from mercurial import ui as uimod
    from mercurial.hgweb import hgweb, wsgicgi

    base = uimod.ui.load()
    for item in argv[2:]:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        base.setconfig(section.encode(), name.encode(), value.encode(), b"rpcserver")
    if os.environ.get(RULES_ENV):
        for kind, function in _push_hooks().items():
            base.setconfig(b"hooks", f"{kind}.rpcserver".encode(), function, b"rpcserver")
    wsgicgi.launch(hgweb(os.fsencode(argv[1]), baseui=base))


if __name__ == "__main__":
    main(sys.argv)
    sys.exit(0)
