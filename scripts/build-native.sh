#!/usr/bin/env bash
# Builds the optional native helper (native/mram-io.c, Node-API) into prebuilds/linux-x64/mram-io.node,
# the prebuilt copy that is committed: `npm install` needs no compiler, and mram works without it.
set -euo pipefail
cd "$(dirname "$0")/.."
include=$(node -p "require('path').join(process.execPath, '../../include/node')")
[ -f "$include/node_api.h" ] || include=/usr/include/node
mkdir -p prebuilds/linux-x64
cc -O2 -shared -fPIC -Wall -Wextra -Wno-unused-parameter -I"$include" -o prebuilds/linux-x64/mram-io.node native/mram-io.c
echo "built prebuilds/linux-x64/mram-io.node"
