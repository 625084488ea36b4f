#!/usr/bin/env bash
# check-format.sh: fails if clang-format (with the repo's .clang-format) would
# change any C++ file. `scripts/check-format.sh --fix` rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h' 2>/dev/null || find . -name '*.cc' -o -name '*.h')
[ ${#files[@]} -eq 0 ] && exit 0
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/sluice-format.log; then
  grep -oE '^[^: ]+\.(cc|h):[0-9]+:' /tmp/sluice-format.log | cut -d: -f1 | sort -u | sed 's/^/needs clang-format: /' >&2
  echo "check-format: run scripts/check-format.sh --fix" >&2
  exit 1
fi
