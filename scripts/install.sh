#!/usr/bin/env bash
# Create or reuse the virtual environment and install the pinned dependency set.
# Idempotent: pip skips what is already installed at the pinned version.
set -euo pipefail

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
LOG="$VENV/install.log"

# open3d needs libusb-1.0 from Debian; install it when we can, say how when we cannot.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1\.0\.so\.0'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing libusb-1.0-0 (needed by open3d) with apt-get" >&2
        (apt-get install -y -qq libusb-1.0-0 >/dev/null 2>&1) \
            || (apt-get update -qq >/dev/null && apt-get install -y -qq libusb-1.0-0 >/dev/null)
    else
        echo "error: open3d needs the Debian package libusb-1.0-0. Run:" >&2
        echo "    sudo apt-get install -y libusb-1.0-0" >&2
        exit 1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 needed"'
    "$PYTHON" -m venv "$VENV"
fi

echo "installing the pinned dependency set into $VENV (log: $LOG)" >&2
if ! "$VENV/bin/python" -m pip install -q -r requirements.txt -r requirements-dev.txt \
        >"$LOG" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$LOG" | tail -n 30 >&2
    echo "error: pip install failed; full log in $LOG" >&2
    exit 1
fi
# The core as an editable package, with the `hand-pose` command; --no-deps keeps pip from
# resolving anything beyond the pinned set. The compat mode (a .pth path entry) lets the
# real package win over the repository's hand_pose_ros/ folder when run from the repo root.
"$VENV/bin/python" -m pip install -q --no-deps --config-settings editable_mode=compat \
    -e hand_pose_ros >>"$LOG" 2>&1
