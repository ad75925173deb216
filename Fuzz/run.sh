#!/bin/sh
# Builds the harnesses (debug: Swift's bounds and overflow checks trap; ASan watches the memory) and runs one
# of them on its seed corpus in a single process.
#     Fuzz/run.sh png|idx|npy|checkpoint [seconds, default 600]
set -eu
cd "$(dirname "$0")"
reader=$1; seconds=${2:-600}
case $reader in
    png) target=FuzzPNG; dict=png.dict; maxlen=8192 ;;
    idx) target=FuzzIDX; dict=; maxlen=4096 ;;
    npy) target=FuzzNPY; dict=npy.dict; maxlen=4096 ;;
    checkpoint) target=FuzzCheckpoint; dict=safetensors.dict; maxlen=8192 ;;
    *) echo "usage: $0 png|idx|npy|checkpoint [seconds]" >&2; exit 2 ;;
esac
# A failed build must stop here: the old binary would otherwise be fuzzed as if it were the new one.
log=$(mktemp)
if ! swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address -j 1 --product "$target" >"$log" 2>&1; then
    grep -v "Cannot export local symbol" "$log" | tail -40 >&2; rm -f "$log"; exit 1
fi
grep -v "Cannot export local symbol" "$log" | tail -1; rm -f "$log"
[ -d corpus/$reader ] || python3 make_seeds.py
mkdir -p artifacts
exec .build/debug/$target corpus/$reader ${dict:+-dict=$dict} -max_total_time="$seconds" -max_len=$maxlen \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix=artifacts/$reader-
