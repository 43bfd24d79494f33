# shellcheck shell=bash
# A KRaft cluster of N nodes (3 for the fault tests) on 127.0.0.1, sourced by kafka.sh when it is
# given --brokers N or KAFKA_BROKERS=N with N > 1. Each node is both controller and broker, with
# its own directory, ports, config and pid file; the single node of kafka.sh (port 9092, run dir
# $KAFKA_RUN_DIR itself) is never touched, so both can run side by side.
#
#   kafka.sh --brokers 3 start          start the nodes that are not running, wait until every
#                                       node lists all N brokers; the last line printed is the
#                                       bootstrap servers (127.0.0.1:19092,127.0.0.1:19093,...)
#   kafka.sh --brokers 3 pid N          node N's JVM pid (exit 3 if it is not running)
#   kafka.sh --brokers 3 start-node N   start node N alone (after a kill -9), wait until it answers
#   kafka.sh --brokers 3 status         exit 0: every node answers; 1: some do not; 3: none runs
#   kafka.sh --brokers 3 stop|reset|logs   all nodes (stop: SIGTERM to all at once)
#
# Environment (all optional), besides kafka.sh's:
#   KAFKA_CLUSTER_DIR=$KAFKA_RUN_DIR/cluster   node N in node-N/ (data, logs, config, pid)
#   KAFKA_CLUSTER_PORT=19092               node N's client port is this + N - 1
#   KAFKA_CLUSTER_CONTROLLER_PORT=19192    node N's controller port is this + N - 1
#   KAFKA_CLUSTER_HEAP_OPTS="-Xmx384m -Xms128m"   per node (three JVMs on a 2-core machine)
#   KAFKA_CLUSTER_GC_THREADS=1             G1's parallel and concurrent GC threads per node
#   KAFKA_CLUSTER_START_TIMEOUT=240        seconds for all nodes (or a restarted one) to answer:
#                                          three JVMs starting at once on two busy cores are slow

KAFKA_CLUSTER_DIR="${KAFKA_CLUSTER_DIR:-$KAFKA_RUN_DIR/cluster}"
KAFKA_CLUSTER_PORT="${KAFKA_CLUSTER_PORT:-19092}"
KAFKA_CLUSTER_CONTROLLER_PORT="${KAFKA_CLUSTER_CONTROLLER_PORT:-19192}"
KAFKA_CLUSTER_HEAP_OPTS="${KAFKA_CLUSTER_HEAP_OPTS:--Xmx384m -Xms128m}"
KAFKA_CLUSTER_GC_THREADS="${KAFKA_CLUSTER_GC_THREADS:-1}"
KAFKA_CLUSTER_START_TIMEOUT="${KAFKA_CLUSTER_START_TIMEOUT:-240}"

# Replication of every topic: three copies at most, two in sync for an acks=all write (one on
# a two-node cluster, where two of two would stop all writes while either node is down).
MAX_REPLICATION=3
SAFE_MIN_ISR=2

CLUSTER_NODES=0
declare -a NODE_LOG_FROM=()

# Points kafka.sh's per-node globals (ports, dirs, config, pid file, quorum) at node $1.
use_node() {
    local node="$1" n voters=""
    local dir="$KAFKA_CLUSTER_DIR/node-$node"
    NODE_ID="$node"
    KAFKA_PORT=$((KAFKA_CLUSTER_PORT + node - 1))
    KAFKA_CONTROLLER_PORT=$((KAFKA_CLUSTER_CONTROLLER_PORT + node - 1))
    DATA_DIR="$dir/data"
    LOG_DIR="$dir/logs"
    CONFIG="$dir/server.properties"
    PID_FILE="$dir/kafka.pid"
    SERVER_LOG="$LOG_DIR/server.log"
    CONSOLE_LOG="$LOG_DIR/console.out"
    for ((n = 1; n <= CLUSTER_NODES; n++)); do
        voters+="${voters:+,}$n@127.0.0.1:$((KAFKA_CLUSTER_CONTROLLER_PORT + n - 1))"
    done
    VOTERS="$voters"
    REPLICATION=$((CLUSTER_NODES < MAX_REPLICATION ? CLUSTER_NODES : MAX_REPLICATION))
    MIN_ISR=$((REPLICATION >= MAX_REPLICATION ? SAFE_MIN_ISR : 1))
    SERVER_LOG_FROM="${NODE_LOG_FROM[$node]:-0}"
    CONSOLE_LOG_FROM=0
}

bootstrap_servers() {
    local n out=""
    for ((n = 1; n <= CLUSTER_NODES; n++)); do
        out+="${out:+,}127.0.0.1:$((KAFKA_CLUSTER_PORT + n - 1))"
    done
    printf '%s\n' "$out"
}

# One cluster id for all nodes (they must agree to form a quorum), made once per cluster dir.
cluster_id() {
    local file="$KAFKA_CLUSTER_DIR/cluster.id"
    [[ -s "$file" ]] || new_cluster_id >"$file"
    cat "$file"
}

# Configures, formats (first time) and launches node $1, which must not be running.
launch_node() {
    local port
    use_node "$1"
    rm -f "$PID_FILE"
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_in_use "$port"; then
            err "node $1: 127.0.0.1:$port is taken by another process; stop it or set" \
                "KAFKA_CLUSTER_PORT/KAFKA_CLUSTER_CONTROLLER_PORT"
            exit 1
        fi
    done
    write_config
    format_storage
    launch
    NODE_LOG_FROM[$1]="$SERVER_LOG_FROM"
}

cluster_start() {
    local n pid started=$SECONDS started_ms
    started_ms="$(now_ms)"
    check_java
    resolve_libs
    CLUSTER_ID="$(cluster_id)"
    local missing=() formats=()
    for ((n = 1; n <= CLUSTER_NODES; n++)); do
        use_node "$n"
        if pid="$(running_pid)"; then
            log "node $n already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
        else
            missing+=("$n")
        fi
    done
    # Formatting starts a JVM per node: side by side, not one after the other.
    for n in "${missing[@]}"; do
        (use_node "$n" && write_config && format_storage) &
        formats+=("$!")
    done
    for pid in "${formats[@]}"; do
        wait "$pid" || exit 1
    done
    # All missing nodes first, then the waits: a node is ready only once a quorum has formed.
    for n in "${missing[@]}"; do
        launch_node "$n"
    done
    READY_BROKERS="$CLUSTER_NODES"
    KAFKA_START_TIMEOUT="$KAFKA_CLUSTER_START_TIMEOUT"
    for ((n = 1; n <= CLUSTER_NODES; n++)); do
        use_node "$n"
        wait_until_ready "$(cat "$PID_FILE")" "$started"
    done
    log "$CLUSTER_NODES nodes ready after $(elapsed "$started_ms") (replication $REPLICATION," \
        "min.insync.replicas $MIN_ISR), run dir $KAFKA_CLUSTER_DIR"
    bootstrap_servers
}

cluster_start_node() {
    local node="$1" pid started=$SECONDS started_ms
    started_ms="$(now_ms)"
    use_node "$node"
    if pid="$(running_pid)"; then
        log "node $node already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
        return 0
    fi
    check_java
    resolve_libs
    CLUSTER_ID="$(cluster_id)"
    launch_node "$node"
    KAFKA_START_TIMEOUT="$KAFKA_CLUSTER_START_TIMEOUT"
    wait_until_ready "$(cat "$PID_FILE")" "$started"
    log "node $node ready on 127.0.0.1:$KAFKA_PORT (pid $(cat "$PID_FILE")) after" \
        "$(elapsed "$started_ms")"
}

cluster_pid() {
    use_node "$1"
    running_pid || { log "node $1 not running"; return 3; }
}

cluster_status() {
    local n pid up=0 answering=0
    for ((n = 1; n <= CLUSTER_NODES; n++)); do
        use_node "$n"
        if ! pid="$(running_pid)"; then
            log "node $n not running"
            continue
        fi
        up=$((up + 1))
        if broker_answers "$KAFKA_PORT"; then
            answering=$((answering + 1))
            log "node $n running (pid $pid) and answering on 127.0.0.1:$KAFKA_PORT"
        else
            log "node $n running (pid $pid) but not answering on 127.0.0.1:$KAFKA_PORT"
        fi
    done
    ((up > 0)) || return 3
    ((answering == CLUSTER_NODES)) || return 1
}

# SIGTERM to every node at once (one by one, the last ones would wait for a lost quorum), then
# each gets kafka.sh's wait and SIGKILL.
cluster_stop() {
    local n pid pids=()
    for ((n = 1; n <= CLUSTER_NODES; n++)); do
        use_node "$n"
        if pid="$(running_pid)"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$n:$pid")
        fi
        rm -f "$PID_FILE"
    done
    if [[ ${#pids[@]} -eq 0 ]]; then
        log "not running"
        return 0
    fi
    log "stopping nodes ${pids[*]}"
    for pid in "${pids[@]}"; do
        use_node "${pid%%:*}"
        stop_pid "${pid#*:}"
    done
    log "stopped"
}

cluster_reset() {
    cluster_stop
    if [[ -d "$KAFKA_CLUSTER_DIR" ]]; then
        rm -rf "$KAFKA_CLUSTER_DIR"
        log "deleted $KAFKA_CLUSTER_DIR"
    fi
}

cluster_logs() {
    local n
    for ((n = 1; n <= CLUSTER_NODES; n++)); do
        use_node "$n"
        printf '===== node %s =====\n' "$n"
        SERVER_LOG_FROM=0
        log_tail 40 2>&1
    done
}

# cluster N COMMAND [NODE]: kafka.sh's commands on an N-node cluster.
cluster() {
    CLUSTER_NODES="$1"
    local command="$2" node="${3:-}"
    if [[ -n "$node" ]] && ((node > CLUSTER_NODES)); then
        err "node $node: the cluster has nodes 1 to $CLUSTER_NODES"
        exit 2
    fi
    KAFKA_HEAP_OPTS="$KAFKA_CLUSTER_HEAP_OPTS"
    KAFKA_JVM_PERFORMANCE_OPTS+=" -XX:ParallelGCThreads=$KAFKA_CLUSTER_GC_THREADS"
    KAFKA_JVM_PERFORMANCE_OPTS+=" -XX:ConcGCThreads=$KAFKA_CLUSTER_GC_THREADS"
    KAFKA_RUN_DIR="$KAFKA_CLUSTER_DIR"  # with_lock's lock file: one lock for the whole cluster
    case "$command" in
        start) with_lock cluster_start ;;
        start-node) with_lock cluster_start_node "$node" ;;
        stop) with_lock cluster_stop ;;
        reset) with_lock cluster_reset ;;
        status) cluster_status ;;
        logs) cluster_logs ;;
        pid) cluster_pid "$node" ;;
        *) usage ;;
    esac
}
