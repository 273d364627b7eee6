#!/usr/bin/env bash
# Kafka of the compose stack with SASL/SCRAM-SHA-512 and the deny-by-default KRaft authorizer.
#
# Wraps the apache/kafka image's own start script (/etc/kafka/docker/run) to do what it cannot:
#  1. write the JAAS file from the environment (never from a file of the repository):
#     - the client listeners (INTERNAL, HOST) authenticate with SCRAM; the broker itself logs in
#       as the super user techne-admin (TECHNE_KAFKA_PASSWORD);
#     - the controller listener uses SASL/PLAIN with a static user known only to this container
#       (TECHNE_KAFKA_CONTROLLER_PASSWORD): SCRAM cannot authenticate the controller quorum,
#       whose metadata holds the SCRAM credentials;
#  2. on first start, format the storage with techne-admin's SCRAM credentials
#     (kafka-storage format --add-scram), so the bus can log in before any ACL exists.
#  3. load the Prometheus JMX exporter agent into the broker (TECHNE_KAFKA_JMX_AGENT).
# Partners and venues get their credentials and ACLs later from `techne partner|venue onboard`.
# (TECHNE_KAFKA_HOME, TECHNE_KAFKA_RUN and TECHNE_KAFKA_SECRETS_DIR exist for
# tests/integration/test_compose_kafka.py, which runs this script against the local jars.)
set -euo pipefail
kafka_home="${TECHNE_KAFKA_HOME:-/opt/kafka}"
run="${TECHNE_KAFKA_RUN:-/etc/kafka/docker/run}"

: "${TECHNE_KAFKA_PASSWORD:?TECHNE_KAFKA_PASSWORD is empty: set it in deploy/.env}"
: "${TECHNE_KAFKA_CONTROLLER_PASSWORD:?TECHNE_KAFKA_CONTROLLER_PASSWORD is empty: set it in deploy/.env}"
case "${TECHNE_KAFKA_PASSWORD}${TECHNE_KAFKA_CONTROLLER_PASSWORD}" in
  *[!A-Za-z0-9_-]*) echo "Kafka passwords: letters, digits, - and _ only (token_urlsafe)" >&2; exit 1 ;;
esac

secrets_dir="${TECHNE_KAFKA_SECRETS_DIR:-/tmp/techne-kafka}"
umask 077
mkdir -p "$secrets_dir"

cat > "$secrets_dir/jaas.conf" <<JAAS
KafkaServer {
  org.apache.kafka.common.security.scram.ScramLoginModule required
  username="techne-admin" password="${TECHNE_KAFKA_PASSWORD}";
};
controller.KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
  username="controller" password="${TECHNE_KAFKA_CONTROLLER_PASSWORD}"
  user_controller="${TECHNE_KAFKA_CONTROLLER_PASSWORD}";
};
JAAS

# client settings of the healthcheck (kafka-broker-api-versions.sh --command-config)
cat > "$secrets_dir/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="techne-admin" password="${TECHNE_KAFKA_PASSWORD}";
PROPS

export KAFKA_OPTS="${KAFKA_OPTS:-} -Djava.security.auth.login.config=$secrets_dir/jaas.conf"

if [ ! -f "${KAFKA_LOG_DIRS}/meta.properties" ]; then
  cat > "$secrets_dir/format.properties" <<PROPS
process.roles=${KAFKA_PROCESS_ROLES}
node.id=${KAFKA_NODE_ID}
controller.quorum.voters=${KAFKA_CONTROLLER_QUORUM_VOTERS}
controller.listener.names=${KAFKA_CONTROLLER_LISTENER_NAMES}
listeners=${KAFKA_LISTENERS}
advertised.listeners=${KAFKA_ADVERTISED_LISTENERS}
listener.security.protocol.map=${KAFKA_LISTENER_SECURITY_PROTOCOL_MAP}
inter.broker.listener.name=${KAFKA_INTER_BROKER_LISTENER_NAME}
sasl.mechanism.inter.broker.protocol=${KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL}
sasl.enabled.mechanisms=${KAFKA_SASL_ENABLED_MECHANISMS}
listener.name.controller.sasl.enabled.mechanisms=${KAFKA_LISTENER_NAME_CONTROLLER_SASL_ENABLED_MECHANISMS}
sasl.mechanism.controller.protocol=${KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL}
log.dirs=${KAFKA_LOG_DIRS}
PROPS
  echo "===> formatting ${KAFKA_LOG_DIRS} with the SCRAM credentials of techne-admin"
  "$kafka_home/bin/kafka-storage.sh" format --cluster-id="${CLUSTER_ID}" -c "$secrets_dir/format.properties" \
    --add-scram "SCRAM-SHA-512=[name=techne-admin,password=${TECHNE_KAFKA_PASSWORD}]" > /dev/null
  rm -f "$secrets_dir/format.properties"
fi

# The broker only (not the healthcheck's or the tools' JVMs, which do not run this script) loads
# the Prometheus JMX exporter: disk, request and replica metrics on :9404 (deploy/kafka/jmx.yml).
if [ -n "${TECHNE_KAFKA_JMX_AGENT:-}" ]; then
  agent_jar="${TECHNE_KAFKA_JMX_AGENT%%=*}"
  if [ -f "$agent_jar" ]; then
    export KAFKA_OPTS="$KAFKA_OPTS -javaagent:${TECHNE_KAFKA_JMX_AGENT}"
  else
    echo "warning: JMX exporter agent $agent_jar missing: broker disk/request metrics are not exported" >&2
  fi
fi

exec "$run"
