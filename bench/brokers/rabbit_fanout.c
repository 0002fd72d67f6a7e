// rabbit_fanout: the RabbitMQ side of the pub/sub fan-out comparison (bench/run.py --only pubsub),
// on librabbitmq (C).
//
//   rabbit_fanout --port=5672 --in-flight=64 --duration=10 --subscribers=3 --payload-bytes=1024
//
// RabbitMQ's durable fan-out: a durable fanout exchange with one durable queue per subscriber,
// persistent messages (delivery_mode 2), publisher confirms. The publisher keeps --in-flight
// publishes unconfirmed (closed loop) for --duration seconds; each subscriber (its own
// connection and thread) consumes its queue with manual acks (prefetch 64). After publishing it
// waits until every subscriber has acked every message. Prints the same human line and
// "RESULT {json}" keys as bench/pubsub/pubsub_bench.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench/brokers/amqp_check.h"
#include "bench/brokers/rpc_report.h"

#define EXCHANGE "callmesh_bench_fanout"
#define MAX_SUBSCRIBERS 16

static const char* g_host = "127.0.0.1";
static int g_port = 5672;
static int g_in_flight = 64;
static int g_subscribers = 3;
static double g_duration = 10, g_warmup = 0;
static int g_payload = 1024;
static const char* g_label = "";

static atomic_llong g_delivered[MAX_SUBSCRIBERS];
static atomic_llong g_last_ack_ns;
static atomic_int g_stop;

static void die(const char* what, const char* detail) __attribute__((noreturn));
static void die(const char* what, const char* detail) {
  fprintf(stderr, "rabbit_fanout: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static void check(amqp_rpc_reply_t reply, const char* what) {
  amqp_check("rabbit_fanout", reply, what);
}

static amqp_connection_state_t connect_broker(void) {
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  if (socket == NULL) die("cannot create a socket", NULL);
  int status = amqp_socket_open(socket, g_host, g_port);
  if (status != AMQP_STATUS_OK) die("cannot connect", amqp_error_string2(status));
  check(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
  amqp_channel_open(conn, 1);
  check(amqp_get_rpc_reply(conn), "channel.open");
  return conn;
}

static void queue_name(int i, char* out, size_t n) {
  snprintf(out, n, "callmesh_bench_fanout_%d", i);
}

// Declares the durable exchange and the durable queues bound to it, emptied.
static void declare_topology(amqp_connection_state_t conn) {
  amqp_exchange_declare(conn, 1, amqp_cstring_bytes(EXCHANGE), amqp_cstring_bytes("fanout"), 0,
                        /*durable=*/1, 0, 0, amqp_empty_table);
  check(amqp_get_rpc_reply(conn), "exchange.declare");
  for (int i = 0; i < g_subscribers; ++i) {
    char queue[64];
    queue_name(i, queue, sizeof queue);
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, /*durable=*/1, 0, 0,
                       amqp_empty_table);
    check(amqp_get_rpc_reply(conn), "queue.declare");
    amqp_queue_bind(conn, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(EXCHANGE),
                    amqp_empty_bytes, amqp_empty_table);
    check(amqp_get_rpc_reply(conn), "queue.bind");
    amqp_queue_purge(conn, 1, amqp_cstring_bytes(queue));
    check(amqp_get_rpc_reply(conn), "queue.purge");
  }
}

static long long wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void* subscriber(void* arg) {
  int index = (int)(intptr_t)arg;
  char queue[64];
  queue_name(index, queue, sizeof queue);
  amqp_connection_state_t conn = connect_broker();
  amqp_basic_qos(conn, 1, 0, 64, 0);
  check(amqp_get_rpc_reply(conn), "basic.qos");
  amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, /*no_ack=*/0, 0,
                     amqp_empty_table);
  check(amqp_get_rpc_reply(conn), "basic.consume");
  while (!atomic_load(&g_stop)) {
    amqp_envelope_t envelope;
    amqp_maybe_release_buffers(conn);
    struct timeval tv = {0, 100000};
    amqp_rpc_reply_t reply = amqp_consume_message(conn, &envelope, &tv, 0);
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_TIMEOUT) {
      continue;
    }
    check(reply, "consume");
    if (amqp_basic_ack(conn, 1, envelope.delivery_tag, 0) != AMQP_STATUS_OK) {
      die("basic.ack", NULL);
    }
    amqp_destroy_envelope(&envelope);
    atomic_fetch_add(&g_delivered[index], 1);
    atomic_store(&g_last_ack_ns, wall_ns());
  }
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
  return NULL;
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* v;
    int payload = g_payload;
    if (common_flag(argv[i], &g_in_flight, &g_duration, &g_warmup, &payload, &g_label)) {
      g_payload = payload;
    } else if ((v = flag_value(argv[i], "--port"))) {
      g_port = atoi(v);
    } else if ((v = flag_value(argv[i], "--subscribers"))) {
      g_subscribers = atoi(v);
    } else {
      die("unknown flag", argv[i]);
    }
  }
  if (g_subscribers < 1 || g_subscribers > MAX_SUBSCRIBERS) die("--subscribers out of range", NULL);
  amqp_connection_state_t conn = connect_broker();
  declare_topology(conn);
  amqp_confirm_select(conn, 1);
  check(amqp_get_rpc_reply(conn), "confirm.select");
  pthread_t threads[MAX_SUBSCRIBERS];
  for (int i = 0; i < g_subscribers; ++i) {
    pthread_create(&threads[i], NULL, subscriber, (void*)(intptr_t)i);
  }
  sleep(1);  // consumers attached

  char* body = malloc(g_payload);
  memset(body, 'x', g_payload);
  amqp_basic_properties_t props;
  memset(&props, 0, sizeof props);
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = 2;  // persistent
  amqp_bytes_t bytes = {(size_t)g_payload, body};
  double* sent_at = calloc(1u << 24, sizeof(double));
  double* latencies = malloc((1u << 24) * sizeof(double));
  size_t latency_n = 0;
  uint64_t published = 0, confirmed = 0;
  const double start = now_s();
  const long long start_ns = wall_ns();
  const double stop = start + g_duration;
  for (;;) {
    const int publishing = now_s() < stop;
    while (publishing && published - confirmed < (uint64_t)g_in_flight) {
      ++published;
      sent_at[published % (1u << 24)] = now_s();
      int status = amqp_basic_publish(conn, 1, amqp_cstring_bytes(EXCHANGE), amqp_empty_bytes, 0, 0,
                                      &props, bytes);
      if (status != AMQP_STATUS_OK) die("basic.publish", amqp_error_string2(status));
    }
    if (!publishing && confirmed == published) break;
    amqp_frame_t frame;
    struct timeval tv = {1, 0};
    int status = amqp_simple_wait_frame_noblock(conn, &frame, &tv);
    if (status == AMQP_STATUS_TIMEOUT) continue;
    if (status != AMQP_STATUS_OK) die("reading a frame", amqp_error_string2(status));
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) die("the broker nacked a publish", NULL);
    if (frame.payload.method.id != AMQP_BASIC_ACK_METHOD) continue;
    amqp_basic_ack_t* ack = (amqp_basic_ack_t*)frame.payload.method.decoded;
    uint64_t upto = ack->delivery_tag;
    uint64_t from = ack->multiple ? confirmed + 1 : upto;
    const double now = now_s();
    for (uint64_t seq = from; seq <= upto; ++seq) {
      latencies[latency_n++] = (now - sent_at[seq % (1u << 24)]) * 1e6;
    }
    if (upto > confirmed) confirmed = upto;
  }
  const double publish_s = now_s() - start;
  const long long expected = (long long)published * g_subscribers;
  long long delivered = 0;
  for (int wait = 0; wait < 12000; ++wait) {
    delivered = 0;
    for (int i = 0; i < g_subscribers; ++i) delivered += atomic_load(&g_delivered[i]);
    if (delivered >= expected) break;
    usleep(10000);
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < g_subscribers; ++i) pthread_join(threads[i], NULL);
  const double deliver_s = (atomic_load(&g_last_ack_ns) - start_ns) / 1e9;
  qsort(latencies, latency_n, sizeof(double), compare_doubles);
  const double p50 = latency_n ? latencies[latency_n / 2] : 0;
  const double p99 = latency_n ? latencies[(size_t)(latency_n * 0.99)] : 0;
  printf(
      "%s: %llu published (%.0f/s, p50 %.0f us, p99 %.0f us), %lld of %lld deliveries (%.0f/s)\n",
      g_label, (unsigned long long)published, published / publish_s, p50, p99, delivered, expected,
      delivered / deliver_s);
  printf(
      "RESULT {\"label\":\"%s\",\"in_flight\":%d,\"subscribers\":%d,\"published\":%llu,"
      "\"publish_per_s\":%.1f,\"publish_p50_us\":%.0f,\"publish_p99_us\":%.0f,"
      "\"delivered\":%lld,\"expected\":%lld,\"delivered_per_s\":%.1f,\"failed\":0}\n",
      g_label, g_in_flight, g_subscribers, (unsigned long long)published, published / publish_s,
      p50, p99, delivered, expected, delivered / deliver_s);
  fflush(stdout);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
  return delivered == expected ? 0 : 1;
}
