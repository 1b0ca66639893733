#!/usr/bin/env bash
# Re-vendor onnxruntime-web for the visualiser (src/hrm/viz/static/vendor/onnxruntime-web/).
# Fetches the package from the npm registry with `npm pack` (no Node needed at run time: only the files
# the page loads are copied) and records the version and SHA-256 of each file.
#   usage: scripts/vendor-onnxruntime-web.sh [VERSION]     (default: the version recorded in VENDORED.md)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/src/hrm/viz/static/vendor/onnxruntime-web"
version="${1:-$(sed -n 's/^version: //p' "$dest/VENDORED.md" 2>/dev/null || true)}"
version="${version:-1.30.0}"
# The WebAssembly build (single- and multi-threaded in one binary), its Emscripten loader, and the ES module API.
files=(ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "onnxruntime-web@$version" >/dev/null && tar xzf onnxruntime-web-*.tgz)
mkdir -p "$dest"
for f in "${files[@]}"; do cp "$work/package/dist/$f" "$dest/$f"; done
license="$(cd "$work/package" && node -p 'require("./package.json").license')"
{
  echo "# onnxruntime-web, vendored for hrm viz"
  echo
  echo "package: onnxruntime-web (npm registry), copied by scripts/vendor-onnxruntime-web.sh"
  echo "version: $version"
  echo "license: $license (see LICENSE)"
  echo
  echo "| file | bytes | sha256 |"
  echo "| --- | --- | --- |"
  for f in "${files[@]}"; do
    echo "| $f | $(stat -c %s "$dest/$f") | $(sha256sum "$dest/$f" | cut -d' ' -f1) |"
  done
} > "$dest/VENDORED.md"
[ -f "$dest/LICENSE" ] || echo "note: add $dest/LICENSE (the npm package ships none; onnxruntime is MIT, (c) Microsoft Corporation)" >&2
echo "vendored onnxruntime-web $version into $dest ($(du -sh "$dest" | cut -f1))"
