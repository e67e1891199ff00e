# Shared by script/server and script/test: install what is missing, reuse what is there.
#
#   bootstrap_apt PKG...   install the Debian packages that are absent (as root)
#   bootstrap_venv         .venv with the project and its locked dependencies
#
# A second run is fast: dpkg-query answers for packages, and a stamp (the hash of
# pyproject.toml and constraints.txt) tells whether .venv is current.

BERTH_PYTHON="${BERTH_PYTHON:-python3}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

bootstrap_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "Berth needs these Debian packages: ${missing[*]}" >&2
        echo "Run this script as root, or install them with: apt-get install ${missing[*]}" >&2
        return 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

bootstrap_python_packages() {
    # Debian's python3 needs python3-venv for `python3 -m venv` to work.
    if ! "$BERTH_PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        bootstrap_apt python3-venv
    fi
    if ! "$BERTH_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "Berth needs Python 3.11 or newer; $BERTH_PYTHON is $("$BERTH_PYTHON" --version)" >&2
        return 1
    fi
}

bootstrap_venv() {
    local extras="${1:-}" stamp want
    bootstrap_python_packages
    want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)${extras}"
    stamp=".venv/.berth-stamp"
    if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    say "preparing .venv (Python packages from pyproject.toml, pinned by constraints.txt)"
    [ -x .venv/bin/python ] || "$BERTH_PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e ".${extras:+[$extras]}"
    echo "$want" > "$stamp"
}
