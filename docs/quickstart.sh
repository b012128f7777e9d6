#!/usr/bin/env bash
# Quick start: build rbk, back up sample data twice, restore it, verify it. Leaves everything in ./rbk-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
rbk="$PWD/target/release/rbk"
demo="$PWD/rbk-demo"
rm -rf "$demo" && mkdir -p "$demo/input"
cd "$demo"

export RBK_REPO="$demo/repo" RBK_PASSWORD_FILE="$demo/password"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > password

# Sample inputs: a SQL dump-like text file, a SQLite database if sqlite3 is
# installed, and a real Neo4j dump when the shared fixtures are beside the checkout.
seq 1 200000 | sed 's/.*/INSERT INTO records VALUES (&, '"'"'record &'"'"');/' > input/metadata.sql
if command -v sqlite3 >/dev/null; then
  sqlite3 input/rushdb.db "create table t(id integer primary key, v text); with recursive c(x) as (select 1 union all select x+1 from c where x<50000) insert into t select x, hex(randomblob(16)) from c;"
fi
fixture="$(dirname "$demo")/../shared/fixtures/neo4j/movies__neo4j-50.dump"
[ -f "$fixture" ] && cp "$fixture" input/neo4j.dump

paths=(); for f in input/*; do paths+=(--path "$f"); done
"$rbk" init --kdf-memory-mib 64
"$rbk" snapshot "${paths[@]}" --tag demo
"$rbk" snapshot "${paths[@]}" --tag demo      # unchanged: adds almost nothing
"$rbk" snapshot --command generated.sql -- seq 1 1000
"$rbk" snapshots
"$rbk" restore latest --to restored --part generated.sql
first=$("$rbk" snapshots --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"][:8])')
"$rbk" restore "$first" --to restored
for f in input/*; do
  n=$(basename "$f")
  if [ "$n" = neo4j.dump ]; then
    # A restored dump is re-compressed: compare what neo4j-admin reads, the decompressed stream.
    cmp <(tail -c +5 "$f" | zstd -dc) <(tail -c +5 "restored/$n" | zstd -dc)
  else
    cmp "$f" "restored/$n"
  fi
done
"$rbk" check --read-data
echo "round trip OK: every restored part matches its input (see $demo)"
