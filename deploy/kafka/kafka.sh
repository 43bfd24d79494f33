#!/usr/bin/env bash
# A real Apache Kafka (KRaft, combined broker+controller) for development and CI: one node by
# default, a three-node cluster with --brokers 3 (or KAFKA_BROKERS=3; see cluster.sh).
#
#   deploy/kafka/kafka.sh start    resolve the jars (first time), format storage (first time),
#                                  start the broker in the background, wait until it answers;
#                                  the last line printed is the bootstrap servers
#   deploy/kafka/kafka.sh status   exit 0 if running and answering
#   deploy/kafka/kafka.sh stop     SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT seconds
#   deploy/kafka/kafka.sh reset    stop and delete the run dir (data, logs, config)
#   deploy/kafka/kafka.sh logs     print the tail of the broker log
#   deploy/kafka/kafka.sh pid N    print node N's JVM pid (N is 1 on a single node)
#   deploy/kafka/kafka.sh start-node N   start node N alone (after a kill), wait until it answers
#
# Environment (all optional):
#   KAFKA_BROKERS=1               nodes; 3 (or --brokers 3) is the cluster of cluster.sh, which
#                                 has its own ports and run dir and never touches the single node
#   KAFKA_PORT=9092               client listener, 127.0.0.1 only
#   KAFKA_CONTROLLER_PORT=9093    KRaft controller listener, 127.0.0.1 only
#   KAFKA_CACHE_DIR=deploy/kafka/cache   jars go to $KAFKA_CACHE_DIR/libs
#   KAFKA_RUN_DIR=deploy/kafka/run       data, logs, generated server.properties, pid file
#   KAFKA_HEAP_OPTS="-Xmx512m -Xms256m"
#   KAFKA_JVM_PERFORMANCE_OPTS    GC flags (Kafka's defaults)
#   KAFKA_OPTS                    extra JVM flags
#   KAFKA_START_TIMEOUT=90        seconds to wait for the broker to answer
#   KAFKA_STOP_TIMEOUT=30         seconds to wait after SIGTERM before SIGKILL
#   JAVA_HOME / JAVA              Java 17 or newer
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-$SCRIPT_DIR/cache}"
KAFKA_RUN_DIR="${KAFKA_RUN_DIR:-$SCRIPT_DIR/run}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
KAFKA_JVM_PERFORMANCE_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC \
-XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
-XX:MaxInlineLevel=15 -Djava.awt.headless=true}"
KAFKA_OPTS="${KAFKA_OPTS:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

LIBS_DIR="$KAFKA_CACHE_DIR/libs"
DATA_DIR="$KAFKA_RUN_DIR/data"
LOG_DIR="$KAFKA_RUN_DIR/logs"
CONFIG="$KAFKA_RUN_DIR/server.properties"
PID_FILE="$KAFKA_RUN_DIR/kafka.pid"
SERVER_LOG="$LOG_DIR/server.log"
CONSOLE_LOG="$LOG_DIR/console.out"
# What the generated config says about the quorum and replication; cluster.sh sets them per node.
NODE_ID=1
VOTERS="1@127.0.0.1:$KAFKA_CONTROLLER_PORT"
REPLICATION=1
MIN_ISR=1
CLUSTER_ID=""      # empty: a random one when the storage is formatted
READY_BROKERS=1    # brokers a node's metadata must list before it counts as ready

if [[ -n "${JAVA:-}" ]]; then
    :
elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    JAVA="$JAVA_HOME/bin/java"
else
    JAVA=java
fi

# Milliseconds since the epoch (bash 5's EPOCHREALTIME), for start-up timings.
now_ms() {
    local t="${EPOCHREALTIME:-$(date +%s.%N)}"
    t="${t/,/.}"
    printf '%s\n' "$(( ${t%%.*} * 1000 + 10#$(printf '%.3s' "${t#*.}000") ))"
}

elapsed() {
    local ms=$(( $(now_ms) - $1 ))
    printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100))
}

log() { printf 'kafka.sh: %s\n' "$*"; }
err() { printf 'kafka.sh: %s\n' "$*" >&2; }

kafka_version() {
    sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$SCRIPT_DIR/pom.xml"
}

# Byte offsets of the logs when this invocation launched the broker: a failed start shows only
# what that start logged, not the end of an earlier run.
SERVER_LOG_FROM=0
CONSOLE_LOG_FROM=0

file_size() {
    if [[ -f "$1" ]]; then wc -c <"$1"; else echo 0; fi
}

log_tail() {
    local lines="${1:-30}" f from
    for f in "$SERVER_LOG" "$CONSOLE_LOG"; do
        from=0
        [[ "$f" == "$SERVER_LOG" ]] && from="$SERVER_LOG_FROM"
        [[ "$f" == "$CONSOLE_LOG" ]] && from="$CONSOLE_LOG_FROM"
        [[ -f "$f" ]] || continue
        printf -- '--- last lines of %s ---\n' "$f" >&2
        tail -c +"$((from + 1))" "$f" | tail -n "$lines" >&2
    done
}

# ---------------------------------------------------------------------------- process

# Prints the pid of our broker if it is alive (and really is our kafka.Kafka process).
running_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: the command line must be our broker with our config.
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "kafka.Kafka $CONFIG" || return 1
    fi
    printf '%s\n' "$pid"
}

# ---------------------------------------------------------------------------- protocol

# Sends a Kafka Metadata v4 request (no topics) to 127.0.0.1:$1 over bash's /dev/tcp and
# succeeds if the answer lists at least ${2:-1} brokers. A KRaft broker only lists itself once
# it has caught up with the metadata log and been unfenced, i.e. once it can serve clients.
broker_answers() {
    local port="$1" want="${2:-1}" hex
    # shellcheck disable=SC2016  # $1 is expanded by the inner bash
    hex="$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        # size=15 | api_key=3 (Metadata) | api_version=4 | correlation_id=0x2a |
        # client_id=null | topics=[] | allow_auto_topic_creation=false
        printf "\x00\x00\x00\x0f\x00\x03\x00\x04\x00\x00\x00\x2a\xff\xff\x00\x00\x00\x00\x00" >&3
        # size | correlation_id | throttle_time_ms | brokers count
        head -c 16 <&3 | od -An -tx1 | tr -d " \n"
    ' _ "$port" 2>/dev/null)" || return 1
    [[ ${#hex} -eq 32 && "${hex:8:8}" == "0000002a" ]] || return 1
    (( 16#${hex:24:8} >= want ))
}

# Succeeds if anything accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    # shellcheck disable=SC2016  # $1 is expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# ---------------------------------------------------------------------------- setup

check_java() {
    local v major
    if ! v="$("$JAVA" -version 2>&1)"; then
        err "no Java found ($JAVA); install Java 17+ or set JAVA_HOME"
        exit 1
    fi
    major="$(printf '%s\n' "$v" | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
    if [[ -z "$major" || "$major" -lt 17 ]]; then
        err "Kafka $(kafka_version) needs Java 17 or newer, found: $(printf '%s' "$v" | head -n 1)"
        exit 1
    fi
}

# Resolves the broker jars with Maven into $LIBS_DIR, once per pom.xml content.
resolve_libs() {
    local stamp want tmp
    stamp="$LIBS_DIR/.pom.sha256"
    want="$(sha256sum "$SCRIPT_DIR/pom.xml" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    if ! command -v mvn >/dev/null 2>&1; then
        err "Maven (mvn) is needed once to download the Kafka jars into $LIBS_DIR"
        exit 1
    fi
    log "resolving Apache Kafka $(kafka_version) jars from Maven Central into $LIBS_DIR"
    mkdir -p "$KAFKA_CACHE_DIR"
    tmp="$(mktemp -d "$KAFKA_CACHE_DIR/libs.tmp.XXXXXX")"
    if ! mvn -q -B -Dstyle.color=never -f "$SCRIPT_DIR/pom.xml" \
            dependency:copy-dependencies -DoutputDirectory="$tmp" \
            >"$KAFKA_CACHE_DIR/resolve.log" 2>&1 </dev/null; then
        err "Maven could not resolve the Kafka jars; see $KAFKA_CACHE_DIR/resolve.log:"
        tail -n 30 "$KAFKA_CACHE_DIR/resolve.log" >&2 || true
        rm -rf "$tmp"
        exit 1
    fi
    printf '%s\n' "$want" >"$tmp/.pom.sha256"
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    log "resolved $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars"
}

write_config() {
    mkdir -p "$DATA_DIR" "$LOG_DIR"
    sed -e "s|@PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$DATA_DIR|g" \
        -e "s|@NODE_ID@|$NODE_ID|g" \
        -e "s|@VOTERS@|$VOTERS|g" \
        -e "s|@REPLICATION@|$REPLICATION|g" \
        -e "s|@MIN_ISR@|$MIN_ISR|g" \
        "$SCRIPT_DIR/server.properties.template" >"$CONFIG.tmp"
    mv "$CONFIG.tmp" "$CONFIG"
}

# A random 16-byte UUID in Kafka's URL-safe base64 form (22 characters). Kafka never hands
# out ids that start with '-' (they look like options on a command line): neither do we.
new_cluster_id() {
    local cluster_id="-"
    while [[ "$cluster_id" == -* ]]; do
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    printf '%s\n' "$cluster_id"
}

# Formats the KRaft storage with $CLUSTER_ID (a random one if empty), unless it is formatted.
format_storage() {
    local cluster_id="$CLUSTER_ID"
    [[ -f "$DATA_DIR/meta.properties" ]] && return 0
    [[ -n "$cluster_id" ]] || cluster_id="$(new_cluster_id)"
    log "formatting KRaft storage in $DATA_DIR (cluster id $cluster_id)"
    if ! "$JAVA" -Xmx256m -cp "$LIBS_DIR/*" \
            -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.xml" -Dkafka.logs.dir="$LOG_DIR" \
            kafka.tools.StorageTool format --ignore-formatted \
            --cluster-id "$cluster_id" --config "$CONFIG" \
            >"$LOG_DIR/format.out" 2>&1 </dev/null; then
        err "formatting the storage failed:"
        cat "$LOG_DIR/format.out" >&2
        exit 1
    fi
}

# ---------------------------------------------------------------------------- commands

wait_until_ready() {
    local pid="$1" started="$2" deadline
    deadline=$((started + KAFKA_START_TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            err "the broker exited during start-up"
            rm -f "$PID_FILE"
            log_tail
            return 1
        fi
        if broker_answers "$KAFKA_PORT" "$READY_BROKERS"; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            err "the broker did not answer on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s"
            log_tail
            stop_pid "$pid"
            return 1
        fi
        sleep 0.5
    done
}

cmd_start() {
    local pid started started_ms
    if pid="$(running_pid)"; then
        if broker_answers "$KAFKA_PORT"; then
            log "already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
            return 0
        fi
        log "already starting (pid $pid); waiting for it to answer"
        wait_until_ready "$pid" "$SECONDS"
        log "ready on 127.0.0.1:$KAFKA_PORT (pid $pid)"
        return 0
    fi
    rm -f "$PID_FILE"
    local port
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_in_use "$port"; then
            err "127.0.0.1:$port is taken by another process (not this script's broker with" \
                "run dir $KAFKA_RUN_DIR); stop it or set KAFKA_PORT/KAFKA_CONTROLLER_PORT"
            exit 1
        fi
    done

    started=$SECONDS
    started_ms="$(now_ms)"
    check_java
    resolve_libs
    write_config
    format_storage
    launch
    pid="$(cat "$PID_FILE")"

    wait_until_ready "$pid" "$started"
    log "ready on 127.0.0.1:$KAFKA_PORT (pid $pid) after $(elapsed "$started_ms")"
}

# Starts the JVM of the configured node in the background; its pid goes to $PID_FILE.
launch() {
    local pid
    SERVER_LOG_FROM="$(file_size "$SERVER_LOG")"
    CONSOLE_LOG_FROM="$(file_size "$CONSOLE_LOG")"
    printf '===== start %s =====\n' "$(date -u +%FT%TZ)" >>"$CONSOLE_LOG"
    # shellcheck disable=SC2086  # the *_OPTS variables are deliberately word-split
    setsid "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_OPTS \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.xml" \
        -Dkafka.logs.dir="$LOG_DIR" \
        -cp "$LIBS_DIR/*" \
        kafka.Kafka "$CONFIG" \
        >>"$CONSOLE_LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$PID_FILE"
    log "starting Apache Kafka $(kafka_version) (pid $pid), logs in $LOG_DIR"
}

# SIGTERM, wait up to KAFKA_STOP_TIMEOUT seconds, then SIGKILL.
stop_pid() {
    local pid="$1" waited=0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= KAFKA_STOP_TIMEOUT * 10)); then
            err "no exit ${KAFKA_STOP_TIMEOUT}s after SIGTERM; sending SIGKILL to $pid"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$PID_FILE"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    log "stopping (pid $pid)"
    stop_pid "$pid"
    log "stopped"
}

cmd_status() {
    local pid
    if ! pid="$(running_pid)"; then
        log "not running"
        return 3
    fi
    if broker_answers "$KAFKA_PORT"; then
        log "running (pid $pid) and answering on 127.0.0.1:$KAFKA_PORT"
        return 0
    fi
    log "running (pid $pid) but not answering on 127.0.0.1:$KAFKA_PORT"
    return 1
}

cmd_reset() {
    cmd_stop
    if [[ -d "$KAFKA_RUN_DIR" ]]; then
        rm -rf "$KAFKA_RUN_DIR"
        log "deleted $KAFKA_RUN_DIR"
    fi
}

# Serialises start/stop/reset of one run dir (e.g. two test sessions starting at once).
with_lock() {
    mkdir -p "$KAFKA_RUN_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$KAFKA_RUN_DIR/.lock"
        flock -w $((KAFKA_START_TIMEOUT + KAFKA_STOP_TIMEOUT + 600)) 9
    fi
    "$@"
}

usage() {
    echo "usage: $0 [--brokers 1|3] {start|stop|status|reset|logs|pid N|start-node N}" >&2
    exit 2
}

# The single node: `pid 1` and `start-node 1` are its pid and `start`.
single() {
    case "$1" in
        start) with_lock cmd_start && printf '127.0.0.1:%s\n' "$KAFKA_PORT" ;;
        stop) with_lock cmd_stop ;;
        status) cmd_status ;;
        reset) with_lock cmd_reset ;;
        logs) log_tail 100 2>&1 ;;
        pid) [[ "$2" == 1 ]] || usage; running_pid || { log "not running"; return 3; } ;;
        start-node) [[ "$2" == 1 ]] || usage; single start ;;
        *) usage ;;
    esac
}

main() {
    local brokers="${KAFKA_BROKERS:-1}" args=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --brokers) [[ $# -ge 2 ]] || usage; brokers="$2"; shift 2 ;;
            --brokers=*) brokers="${1#*=}"; shift ;;
            *) args+=("$1"); shift ;;
        esac
    done
    case "${#args[@]}:${args[0]:-}" in
        1:start | 1:stop | 1:status | 1:reset | 1:logs | 2:pid | 2:start-node) ;;
        *) usage ;;
    esac
    [[ "${args[1]:-1}" =~ ^[1-9][0-9]*$ ]] || usage
    if [[ "$brokers" == 1 ]]; then
        single "${args[@]}" ""
    elif [[ "$brokers" =~ ^[2-9]$ ]]; then
        # shellcheck source=deploy/kafka/cluster.sh
        source "$SCRIPT_DIR/cluster.sh"
        cluster "$brokers" "${args[@]}" ""
    else
        err "--brokers must be 1 to 9, not $brokers"
        exit 2
    fi
}

main "$@"
