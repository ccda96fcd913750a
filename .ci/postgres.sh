#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on 127.0.0.1 as an unprivileged user; print its URL.
# Usage: export ECOUTE_TEST_PG=$(.ci/postgres.sh)    (needs Debian's `postgresql` package)
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] || { echo "postgresql is not installed" >&2; exit 1; }
PORT=${ECOUTE_PG_PORT:-55432}
URL="postgresql+psycopg://ecoute@127.0.0.1:$PORT/postgres"
if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U ecoute; then   # one already runs here: reuse it
  echo "$URL"
  exit 0
fi
DIR=$(mktemp -d /tmp/ecoute-pg.XXXXXX)
RUN=()
if [ "$(id -u)" = 0 ]; then   # PostgreSQL refuses to run as root
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$DIR"
  RUN=(runuser -u postgres --)
fi
"${RUN[@]}" "$PGBIN/initdb" -D "$DIR/data" -A trust -U ecoute --no-sync >"$DIR/initdb.log" 2>&1
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
echo "$URL"
