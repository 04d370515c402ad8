#!/usr/bin/env bash
# Installs the Debian 12 packages mstream builds and tests with. Idempotent: does nothing when
# every package is already there. Needs root (or sudo) for apt-get.
set -euo pipefail

packages=(
  cmake ninja-build pkg-config g++        # build
  clang libclang-rt-14-dev                # libFuzzer targets (run by the test suite)
  libgtest-dev libgmock-dev               # tests
  libcli11-dev                            # the mstream command line
  libzmq3-dev                             # ZeroMQ: the throughput benchmark's baseline
  tcl8.6-dev                              # Tcl 8.6: agents, handlers and the shell
  libreadline-dev                         # line editing and history in mstream shell
  libsqlite3-dev                          # SQLite: the failure managers' durable store
  libsodium-dev                           # libsodium: secured sessions (join, sealed datagrams)
  iproute2                                # ip netns: the partition tests' network namespaces
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
