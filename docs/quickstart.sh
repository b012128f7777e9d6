#!/usr/bin/env bash
# Quick start: build rbk and show its main job. With a Docker engine (and root, to build the
# test image from Debian's packages): bring up a small RushDB-shaped stack, put data in both
# stores, snapshot it, damage both stores, restore, prove the data is back, run the restore
# drill, and remove every container, volume and network it created. Without Docker: a round
# trip of files (sample data backed up twice, restored, verified). Either way the repository
# is left in ./rbk-demo to explore.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
rbk="${CARGO_TARGET_DIR:-$PWD/target}/release/rbk"
demo="$PWD/rbk-demo"
rm -rf "$demo" && mkdir -p "$demo/input"

export RBK_REPO="$demo/repo" RBK_PASSWORD_FILE="$demo/password"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$demo/password"

# Exit 6 is "done, with warnings" (README, "Exit codes"): a success here.
done_ok() { "$@" || { s=$?; [ "$s" -eq 6 ] || exit "$s"; }; }

stack_demo() {
  local project=rbkdemo
  # Global, not local: the EXIT trap runs after this function has returned.
  compose=(docker-compose -p "$project" -f "$PWD/tests/images/compose.yaml")
  local pg="${project}_postgres_1" neo4j="${project}_neo4j_1"
  # Whatever happens from here on, the demo stack goes, volumes and all.
  trap '"${compose[@]}" down -v -t 1 >/dev/null 2>&1 || true' EXIT
  echo "== the test image (Debian's PostgreSQL, stand-ins for Neo4j and RushDB; tests/images/README.md)"
  bash tests/images/build.sh
  # A key of its own: RushDB's published default would be warned about.
  RUSHDB_AES_256_ENCRYPTION_KEY="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    "${compose[@]}" up -d
  psql() { docker exec "$pg" psql -U rushdb -d rushdb -Atc "$1"; }
  graph() { docker exec "$neo4j" "$@"; }

  echo "== data in both stores"
  psql "insert into projects (name, token) values ('acme', 'tok-acme'), ('globex', 'tok-globex')"
  graph graph-fill 20000
  graph graph-write movie:1 "The Matrix"
  psql "select name, token from projects order by id" | tee "$demo/projects.before"
  graph graph-read movie:1

  echo "== rbk init, rbk snapshot (RushDB is paused only for the dumps)"
  cd "$demo"
  "$rbk" init --kdf-memory-mib 64
  done_ok "$rbk" snapshot --project "$project"

  echo "== damage both stores"
  psql "delete from projects"
  graph graph-write movie:1 "overwritten by mistake"
  echo "projects left: $(psql 'select count(*) from projects'); movie:1 is now: $(graph graph-read movie:1)"

  echo "== rbk restore latest (every byte verified first, then both stores loaded)"
  done_ok "$rbk" restore latest --project "$project"
  for _ in $(seq 1 60); do graph graph-read movie:1 >/dev/null 2>&1 && break; sleep 1; done
  psql "select name, token from projects order by id" > "$demo/projects.after"
  diff "$demo/projects.before" "$demo/projects.after"
  [ "$(graph graph-read movie:1)" = "The Matrix" ]
  echo "both stores are back: $(wc -l < "$demo/projects.after") projects, movie:1 = $(graph graph-read movie:1)"

  echo "== rbk verify --restore-test (a throwaway copy of the stack, loaded, started and checked)"
  "$rbk" verify latest --restore-test --project "$project"
  "$rbk" snapshots
  echo "stack round trip OK; the demo stack is removed on exit, the repository stays in $demo"
}

files_demo() {
  cd "$demo"
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
  "$rbk" verify latest
  echo "round trip OK: every restored part matches its input (see $demo)"
}

if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "no Docker engine here (docker info failed): showing a round trip of files instead of a stack"
  files_demo
elif ! command -v docker-compose >/dev/null; then
  echo "no docker-compose here (apt-get install docker-compose): showing a round trip of files instead of a stack"
  files_demo
elif [ "$(id -u)" != 0 ]; then
  echo "not root: the demo stack's image is built with debootstrap, which needs root; showing a round trip of files instead"
  files_demo
else
  stack_demo
fi
