# Shared by script/server and script/test: install what is missing, reuse what is there.
#
#   bootstrap_apt PKG...   install the Debian packages that are absent (as root)
#   bootstrap_venv         .venv with the project and its locked dependencies
#
# A second run is fast: dpkg-query answers for packages, and a stamp (the hash of
# pyproject.toml and constraints.txt, and the extras installed) tells whether .venv is
# current; the one stamp serves both scripts.

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
    # One stamp serves script/server and script/test: its first line is the hash of
    # pyproject.toml and constraints.txt, its second the extras installed. A call is
    # satisfied when the hash matches and every extra it asks for is there (script/server
    # asks for none, so it reuses the .venv script/test made, and never reinstalls).
    local extras="${1:-}" stamp hash have="" extra need=0
    bootstrap_python_packages
    hash="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
    stamp=".venv/.berth-stamp"
    if [ -x .venv/bin/python ] && [ -f "$stamp" ]; then
        have="$(sed -n 2p "$stamp")"
        for extra in ${extras//,/ }; do
            case ",$have," in *",$extra,"*) ;; *) need=1 ;; esac
        done
        [ "$need" -eq 0 ] && [ "$(head -n1 "$stamp")" = "$hash" ] && return 0
        # keep what is installed: a server's later run must not drop the test extras
        extras="$(printf '%s\n' ${have//,/ } ${extras//,/ } | sort -u | paste -sd, -)"
    fi
    say "preparing .venv (Python packages from pyproject.toml, pinned by constraints.txt)"
    [ -x .venv/bin/python ] || "$BERTH_PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e ".${extras:+[$extras]}"
    printf '%s\n%s\n' "$hash" "$extras" > "$stamp"
}
