# Sourced by scripts/start, scripts/test and scripts/lock: find a Python >= 3.12, create or reuse
# .venv, and install the project (with extras "$CALO_EXTRAS") at the versions constraints.txt
# pins, again whenever pyproject.toml or constraints.txt changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
CONSTRAINTS="$ROOT/constraints.txt"

is_new_enough() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
  local cand
  for cand in "${CALO_PYTHON:-}" python3.13 python3.12 python3.14 python3 python; do
    [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 || continue
    if is_new_enough "$cand"; then command -v "$cand"; return 0; fi
  done
  # pyenv keeps versions that are installed but not active; its shims refuse to run them
  for cand in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do
    if is_new_enough "$cand"; then echo "$cand"; return 0; fi
  done
  for cand in /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9] /opt/homebrew/bin/python3.1[2-9]; do
    [ -x "$cand" ] && is_new_enough "$cand" && { echo "$cand"; return 0; }
  done
  return 1
}

python_or_die() {
  find_python || {
    echo "calo_addon needs Python >= 3.12 and found none: install one, or set CALO_PYTHON=/path/to/python3.12" >&2
    exit 1
  }
}

# What the installed versions depend on: pyproject.toml and constraints.txt, as one checksum.
inputs_sum() {
  cat "$ROOT/pyproject.toml" "$CONSTRAINTS" 2>/dev/null | cksum | cut -d' ' -f1
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ] || ! is_new_enough "$VENV/bin/python"; then
    local py
    py="$(python_or_die)"
    echo "creating $VENV with $py ($("$py" --version 2>&1))" >&2
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
  fi
  local extras="${CALO_EXTRAS:-}" sum spec="."
  sum="$(inputs_sum)"
  [ -n "$extras" ] && spec=".[${extras}]"
  # the dev extras include everything the runtime needs
  if [ -f "$VENV/.calo-installed-$sum-${extras:-runtime}" ] || { [ -z "$extras" ] && [ -f "$VENV/.calo-installed-$sum-dev" ]; }; then
    return 0
  fi
  echo "installing calo_addon$([ -n "$extras" ] && echo " with $extras extras") into $VENV" >&2
  local pins=()
  [ -f "$CONSTRAINTS" ] && pins=(-c "$CONSTRAINTS")
  (cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check ${pins[@]+"${pins[@]}"} -e "$spec") >&2
  find "$VENV" -maxdepth 1 -name '.calo-installed-*' ! -name ".calo-installed-$sum-*" -delete
  touch "$VENV/.calo-installed-$sum-${extras:-runtime}"
}

# The servers some tests run beside the proxy, from the distribution's packages: redis-server
# (shared state) and haproxy (the README's several-machines example). Installed when missing
# and apt-get can (as root, or with password-less sudo); otherwise those tests skip, naming
# what is missing.
ensure_test_servers() {
  local missing=() cmd
  for cmd in redis-server haproxy; do
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$cmd")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
      echo "note: ${missing[*]} not installed (needs root for apt-get): their tests will skip" >&2
      return 0
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || {
    echo "note: ${missing[*]} not installed and no apt-get here: their tests will skip" >&2
    return 0
  }
  echo "installing ${missing[*]} with apt-get (tests run them on loopback ports)" >&2
  { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" \
      apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2 \
    || echo "note: installing ${missing[*]} failed: their tests will skip" >&2
}
