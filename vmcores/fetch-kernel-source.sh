#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fetch one of Debian's linux-source-X.Y packages and unpack the kernel tree.
#
# Debian 12 has no kernel with LUO, so we borrow the source package from a
# newer suite: linux-source-7.2 (7.2.13) from unstable, linux-source-7.3
# (7.3.4) from trixie-backports.  The mirror is taken from this machine's own
# apt sources (no host name is written into the repository), and a private
# Dir::State::Lists keeps the system's package lists untouched.
#
# usage: fetch-kernel-source.sh DESTDIR [SUITE [VERSION]]
#        -> DESTDIR/linux-source-VERSION/   (default: sid 7.2)
set -euo pipefail
dest=${1:?usage: fetch-kernel-source.sh DESTDIR [SUITE [VERSION]]}
suite=${2:-sid}
version=${3:-7.2}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
if [ -f "$dest/linux-source-$version/Makefile" ]; then
    echo "kernel source already in $dest/linux-source-$version"; exit 0
fi
uri=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}')
[ -n "$uri" ] || uri=$(grep -h -m1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}')
[ -n "$uri" ] || { echo "no Debian mirror found in the apt sources" >&2; exit 2; }
work="$dest/.apt-$suite"
mkdir -p "$work/lists/partial" "$work/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" > "$work/$suite.list"
opts=(-o Dir::Etc::SourceList="$work/$suite.list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$work/lists" -o Dir::Cache::Archives="$work/archives"
      -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1)
apt-get "${opts[@]}" -qq update
(cd "$work" && apt-get "${opts[@]}" -qq download "linux-source-$version")
deb=$(ls "$work"/linux-source-"$version"_*.deb | head -1)
dpkg-deb -x "$deb" "$work/extract"
tar -C "$dest" -xJf "$work/extract/usr/src/linux-source-$version.tar.xz"
rm -rf "$work"
echo "kernel source in $dest/linux-source-$version"
