# shellcheck shell=bash
# Sourced by scripts/demo and scripts/cluster-demo: demo secrets, and starting, watching and
# stopping `sbm node` processes. Expects `say` and `die` from the sourcing script.

# kill -0 alone also succeeds on a child that has exited but not been waited for.
process_alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $state != Z* ]]
}

# True when something already accepts connections on the port.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

base64url() { base64 -w0 | tr '+/' '-_'; }

# DIR/keys.json (one HS256 key, kid demo-1) and DIR/fernet.key, readable by this user only.
generate_secrets() {
  local dir=$1 jwt_secret
  # Unpadded, as JWK "k" values are; Fernet keys are padded by definition (44 characters).
  jwt_secret=$(head -c 32 /dev/urandom | base64url | tr -d '=')
  (
    umask 077
    printf '{"keys":[{"kid":"demo-1","alg":"HS256","secret":"%s"}]}\n' "$jwt_secret" >"$dir/keys.json"
    head -c 32 /dev/urandom | base64url >"$dir/fernet.key"
    echo >>"$dir/fernet.key"
  )
}

# Until URL/readyz answers 200; dies when the node (PID) exits first or TIMEOUT_S passes.
wait_ready() {
  local url=$1 pid=$2 timeout_s=$3 status
  local deadline=$((SECONDS + timeout_s))
  until curl -fsS -o /dev/null --max-time 2 "$url/readyz" 2>/dev/null; do
    if ! process_alive "$pid"; then
      status=0
      wait "$pid" || status=$?
      die "the node on $url exited with status $status before becoming ready"
    fi
    ((SECONDS < deadline)) || die "$url/readyz did not answer 200 within ${timeout_s}s"
    sleep 0.5
  done
}

# SIGTERM (the node drains its requests and gives its lease back), SIGKILL after TIMEOUT_S.
stop_node() {
  local pid=$1 timeout_s=$2 tenths=0 status=0
  process_alive "$pid" || return 0
  say "stopping the node (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  while process_alive "$pid" && ((tenths < timeout_s * 10)); do
    sleep 0.1
    tenths=$((tenths + 1))
  done
  if process_alive "$pid"; then
    say "the node did not stop within ${timeout_s}s: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || status=$?
  say "node $pid exited with status $status"
}
