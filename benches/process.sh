#!/usr/bin/env bash
# Whole-process timings of bulk operations on SQLite, with peak memory (GNU time).
# Usage: benches/process.sh [USERS]   (default 100000; needs /usr/bin/time)
# Prints a Markdown table for the README.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
cargo build --release --quiet
BIN=$PWD/target/release/keyward
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export KEYWARD_DATABASE_URL="sqlite://$WORK/k.db" KEYWARD_MASTER_KEY_FILE="$WORK/master.key"
export XDG_DATA_HOME="$WORK/data" XDG_CONFIG_HOME="$WORK/config"

row() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/t" "$@" > "$WORK/out" 2>&1 || { cat "$WORK/out"; exit 1; }
  read -r secs kib < "$WORK/t"
  printf '| %s | %s s | %s MiB |\n' "$label" "$secs" "$((kib / 1024))"
}

echo "| operation ($N users) | wall time | peak memory |"
echo "|---|---|---|"
row "init" "$BIN" init --domain free.example.com
row "demo --users $N --tokens $((N * 10))" "$BIN" demo --users "$N" --tokens "$((N * 10))"

# CSV import into a fresh domain.
"$BIN" domain add import.example.com > /dev/null
{ echo "email,name,role,station"; for ((i = 0; i < N; i++)); do echo "csv$i@bulk.example,Bulk User $i,,Station $i"; done; } > "$WORK/users.csv"
row "user import (CSV, $N rows)" "$BIN" user import "$WORK/users.csv" --domain import.example.com

# apply of a file declaring N users in another domain, then the no-change re-run.
{
  printf '[[domains]]\nname = "apply.example.com"\n\n'
  for ((i = 0; i < N; i++)); do
    printf '[[users]]\nemail = "file%d@apply.example"\ndomain = "apply.example.com"\nname = "File User %d"\nstations = [{ name = "Station %d" }]\n\n' "$i" "$i" "$i"
  done
} > "$WORK/env.toml"
row "apply (create $N users)" "$BIN" apply -f "$WORK/env.toml"
row "apply again (no changes)" "$BIN" apply -f "$WORK/env.toml"
row "export (all domains)" "$BIN" export
row "user list --search (substring)" "$BIN" user list --search "user 4242" --limit 20
row "token list --limit 50" "$BIN" token list --limit 50
