#!/usr/bin/env bash
# Installs everything the test suite needs and runs the whole suite in two environments side by
# side, failing if either fails:
#   oldest: Python 3.11 with every dependency at the floor pyproject.toml declares (numpy, grpcio,
#           protobuf, ...), so that each floor is a tested one;
#   newest: Python 3.13.0 with the newest releases pip gives a new user (numpy 2.5 and on).
# The environments are virtualenvs under .ci-envs/ (gitignored): a fresh clone builds them, a later
# run reuses and updates them. Debian's nginx and docker-compose serve the deployment tests.
# Arguments go to both pytest runs (e.g. `bash scripts/test.sh tests/engine -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

envs=.ci-envs
mkdir -p "$envs"
started=$SECONDS

find_python() {  # $1: a version or its prefix (3.11, 3.13.0): the newest such interpreter's path
    local v exe
    if command -v pyenv >/dev/null 2>&1; then
        v=$(pyenv versions --bare 2>/dev/null | grep -E "^${1//./\\.}(\.[0-9]+)?$" | sort -V | tail -n 1 || true)
        if [ -n "$v" ] && [ -x "$(pyenv root)/versions/$v/bin/python" ]; then
            echo "$(pyenv root)/versions/$v/bin/python"
            return
        fi
    fi
    for exe in "python$(cut -d. -f1,2 <<<"$1")" python3; do
        if command -v "$exe" >/dev/null 2>&1 && "$exe" -c "import platform, sys; \
sys.exit(not (platform.python_version() + '.').startswith('$1.'))"; then
            command -v "$exe"
            return
        fi
    done
    echo "scripts/test.sh: no Python $1 here (pyenv install $1)" >&2
    return 1
}

make_env() {  # $1 name, $2 Python version; then pip's install arguments
    local name=$1 version=$2 env=$envs/$1
    shift 2
    if ! "$env/bin/python" -c "import sys; sys.exit(not sys.version.startswith('$version'))" 2>/dev/null; then
        rm -rf "$env"
        "$(find_python "$version")" -m venv "$env"
    fi
    echo "== $name: installing ($("$env/bin/python" --version))"
    local rc=0
    "$env/bin/python" -m pip install -q --disable-pip-version-check "$@" > "$envs/$name.pip.log" 2>&1 || rc=$?
    grep -v "^WARNING: Location .* is ignored" "$envs/$name.pip.log" || true
    [ "$rc" = 0 ] || { echo "scripts/test.sh: pip could not install the $name environment" >&2; return 1; }
    "$env/bin/python" -c "import remote_autograd.server.app" \
        || { echo "scripts/test.sh: the $name environment cannot load the server" >&2; return 1; }
}

# oldest: each `name>=floor` of pyproject.toml's dependencies pinned at its floor
"$(find_python 3.11)" - > "$envs/floors.txt" <<'PY'
import re
import sys
import tomllib

for dep in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(\[[^]]*\])?\s*>=\s*([^,;\s]+)", dep)
    if not m:
        sys.exit(f"scripts/test.sh: dependency {dep!r} declares no floor (name>=version) to test")
    print(f"{m[1]}=={m[3]}")
PY
make_env oldest 3.11 -e ".[test]" -c "$envs/floors.txt"
make_env newest 3.13.0 --upgrade --upgrade-strategy eager -e ".[test]"

# Each run in a network namespace of its own where the machine allows one (unshare, as root), so
# that a server restarted on its old port can never meet the other run's servers there; without
# one, every server of the suite still asks the kernel for a free port (--port 0).
isolate=()
if unshare -n sh -c 'ip link set lo up' 2>/dev/null; then
    isolate=(unshare -n sh -c 'ip link set lo up && exec "$@"' isolate)
fi
versions='import importlib.metadata as m, platform; print("Python", platform.python_version(), \
*(f"{p} {m.version(p)}" for p in ("numpy", "grpcio", "protobuf", "torch")))'
pids=()
for name in oldest newest; do
    "$envs/$name/bin/python" -c "$versions" > "$envs/$name.versions"
    echo "== $name: $(cat "$envs/$name.versions"): pytest, its log in $envs/$name.log"
    HYPOTHESIS_STORAGE_DIRECTORY="$envs/$name.hypothesis" PATH="$PWD/$envs/$name/bin:$PATH" \
        "${isolate[@]}" "$envs/$name/bin/python" -m pytest -p no:cacheprovider "$@" \
        > "$envs/$name.log" 2>&1 &
    pids+=($!)
done
failed=0
for i in 0 1; do
    name=$([ "$i" = 0 ] && echo oldest || echo newest)
    rc=0
    wait "${pids[$i]}" || rc=$?
    echo
    echo "== $name ($(cat "$envs/$name.versions")): pytest exited $rc"
    # the short test summary (-ra) with every failure, then the closing line
    sed -n '/=* short test summary info =*/,$p' "$envs/$name.log" | grep -v "^=* short test summary" \
        | head -n 200 || true
    if [ "$rc" = 5 ]; then
        echo "$name: pytest collected no test: that is a failure here"
    fi
    if [ "$rc" != 0 ]; then
        failed=1
        [ -s "$envs/$name.log" ] && grep -q "short test summary info" "$envs/$name.log" \
            || tail -n 40 "$envs/$name.log"
    fi
done
echo
echo "scripts/test.sh: $((SECONDS - started)) s in all; each environment's pytest summary:"
for name in oldest newest; do
    echo "$name ($(cat "$envs/$name.versions")):"
    grep -E '^=+ [0-9a-z].* in [0-9.]+s( \([0-9:]+\))? =+$' "$envs/$name.log" | tail -n 1 \
        || echo "(no summary line: see $envs/$name.log)"
done
exit $failed
