#!/usr/bin/env bash
# Installs a real Kallithea 0.7.0 server (for tests/differential) into a cache outside the clone:
#   ${KALLITHEA_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rpcserver/kallithea-0.7.0}/venv
# A no-op when the stamp there records the hash of kallithea-server.txt and of this script and
# the venv still runs; otherwise rebuilt from nothing (CI builds it on a fresh clone). Prints the
# venv's path last. Serialised with flock: two `make test` at once build it once.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REQS=$HERE/kallithea-server.txt
PY=${KALLITHEA_PYTHON:-$(command -v python3.11 || command -v python3)}
CACHE=${KALLITHEA_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rpcserver/kallithea-0.7.0}
VENV=$CACHE/venv
STAMP=$CACHE/stamp
log() { echo "[kallithea-server] $*" >&2; }

mkdir -p "$CACHE"
exec 9> "$CACHE/lock"
flock 9

want=$(cat "$REQS" "$0" | sha256sum | cut -d' ' -f1)
usable() {
  # A venv's scripts name its python by absolute path: a moved cache is unusable.
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] || return 1
  head -n 1 "$VENV/bin/gearbox" | grep -qF "$VENV/bin/python" || return 1
  "$VENV/bin/python" -c 'import kallithea, gearbox, formencode, mercurial' 2>/dev/null
}
if usable; then
  echo "$VENV"
  exit 0
fi

log "building Kallithea 0.7.0 into $VENV (from nothing, about a minute)"
start=$SECONDS
rm -rf "$VENV" "$CACHE/build" "$STAMP"
BUILD=$CACHE/build
mkdir -p "$BUILD/fakever" "$BUILD/wheels"

# FormEncode 1.3.1 as a wheel, in a throw-away venv with setuptools<58 (use_2to3). `pip download`
# runs the unpatched setup.py for its metadata, so it sees a faked sys.version just for that.
"$PY" -m venv "$BUILD/fe-venv"
"$BUILD/fe-venv/bin/pip" install -q 'setuptools<58' wheel
printf 'import sys\nsys.version = "3.9.99 (faked for FormEncode 1.3.1) " + sys.version\n' \
  > "$BUILD/fakever/sitecustomize.py"
PYTHONPATH="$BUILD/fakever" "$BUILD/fe-venv/bin/pip" download -q --no-deps --no-binary :all: \
  --no-build-isolation FormEncode==1.3.1 -d "$BUILD/dl"
tar -xzf "$BUILD"/dl/FormEncode-1.3.1.tar.gz -C "$BUILD"
sed -i "s/^if not '2.6' <= sys.version < '3.0' and not '3.2' <= sys.version:/if sys.version_info < (2, 6) or (3, 0) <= sys.version_info < (3, 2):/" \
  "$BUILD/FormEncode-1.3.1/setup.py"
grep -q 'sys.version_info < (2, 6)' "$BUILD/FormEncode-1.3.1/setup.py"
(cd "$BUILD/FormEncode-1.3.1" &&
   "$BUILD/fe-venv/bin/pip" wheel -q --no-deps --no-build-isolation -w "$BUILD/wheels" .)

# The server's venv: pip 24.0 (later pips refuse celery 5.0.5's metadata), setuptools<70 (Kallithea
# and Paste use pkg_resources), mercurial pure, FormEncode from the wheel, then the pinned rest.
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q pip==24.0 'setuptools<70' wheel
"$VENV/bin/python" -m pip install -q --no-deps --config-settings=--global-option=--pure \
  mercurial==5.8.1
"$VENV/bin/python" -m pip install -q --no-deps "$BUILD"/wheels/FormEncode-1.3.1-*.whl
DISABLE_SQLALCHEMY_CEXT=1 "$VENV/bin/python" -m pip install -q --no-deps -r "$REQS"
"$VENV/bin/kallithea-cli" --help > /dev/null
"$VENV/bin/python" -c 'import kallithea, gearbox, formencode, mercurial'
rm -rf "$BUILD"
echo "$want" > "$STAMP"
log "built in $((SECONDS - start)) s"
echo "$VENV"
