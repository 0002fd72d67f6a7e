// rabbit_rpc: the RabbitMQ side of the async end-to-end comparison, on librabbitmq (C).
//
//   rabbit_rpc server --port=5672 --prefetch=64
//   rabbit_rpc client --port=5672 --in-flight=64 --duration=10 --warmup=1 --label=x
//
// An RPC round trip with RabbitMQ's durability features on:
//   - the request queue "callmesh_bench_rpc" and the client's reply queue are durable;
//   - every message (request and reply) is persistent (delivery_mode 2);
//   - both sides publish with publisher confirms and wait for the broker's confirm;
//   - the reply goes to the request's reply_to, carrying its correlation_id;
//   - both sides consume with manual acks. The server acks a request only after the broker has
//     confirmed its reply, so a crash in between redelivers the request (at-least-once, like a
//     callmesh call whose completion is persisted before the call is marked done).
// The client keeps --in-flight requests outstanding (closed loop). A call is complete when its
// reply has arrived and its request was confirmed; latency runs from the publish of the request.
// The server answers "Hello, " + body (like the greeter). Prints the same human line and
// "RESULT {json}" line as bench/load/load_client.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench/brokers/amqp_check.h"
#include "bench/brokers/rpc_report.h"

#define QUEUE "callmesh_bench_rpc"
#define CAP (1u << 20)  // ring of outstanding requests, indexed by publish sequence number

static const char* g_host = "127.0.0.1";
static int g_port = 5672;
static int g_in_flight = 64;
static int g_prefetch = 64;
static double g_duration = 10, g_warmup = 1;
static int g_payload = 1024;
static const char* g_label = "";

static void die(const char* what, const char* detail) __attribute__((noreturn));
static void die(const char* what, const char* detail) {
  fprintf(stderr, "rabbit_rpc: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static void check_reply(amqp_rpc_reply_t reply, const char* what) {
  amqp_check("rabbit_rpc", reply, what);
}

static amqp_connection_state_t connect_broker(int prefetch) {
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  if (socket == NULL) die("cannot create a socket", NULL);
  int status = amqp_socket_open(socket, g_host, g_port);
  if (status != AMQP_STATUS_OK) die("cannot connect", amqp_error_string2(status));
  check_reply(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
              "login");
  amqp_channel_open(conn, 1);
  check_reply(amqp_get_rpc_reply(conn), "channel.open");
  amqp_confirm_select(conn, 1);
  check_reply(amqp_get_rpc_reply(conn), "confirm.select");
  amqp_basic_qos(conn, 1, 0, (uint16_t)prefetch, 0);
  check_reply(amqp_get_rpc_reply(conn), "basic.qos");
  return conn;
}

static void declare_durable(amqp_connection_state_t conn, const char* queue) {
  amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, /*durable=*/1, 0, 0, amqp_empty_table);
  check_reply(amqp_get_rpc_reply(conn), "queue.declare");
}

static void consume(amqp_connection_state_t conn, const char* queue) {
  amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, /*no_ack=*/0, 0,
                     amqp_empty_table);
  check_reply(amqp_get_rpc_reply(conn), "basic.consume");
}

static void publish(amqp_connection_state_t conn, const char* routing_key, const char* reply_to,
                    const char* correlation_id, const void* body, size_t len) {
  amqp_basic_properties_t props;
  memset(&props, 0, sizeof props);
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
  props.delivery_mode = 2;  // persistent
  props.correlation_id = amqp_cstring_bytes(correlation_id);
  if (reply_to != NULL) {
    props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
    props.reply_to = amqp_cstring_bytes(reply_to);
  }
  amqp_bytes_t bytes = {len, (void*)body};
  int status = amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(routing_key), 0, 0,
                                  &props, bytes);
  if (status != AMQP_STATUS_OK) die("basic.publish", amqp_error_string2(status));
}

// One frame-level event read from the connection.
typedef struct {
  int kind;  // 0 none (timeout), 1 confirm ack, 2 delivery
  uint64_t tag;
  int multiple;
  char reply_to[256];
  char correlation_id[64];
  char* body;
  size_t body_len;
} event_t;

// Reads the next event; waits at most `timeout_s`. Exits on a broker error or a nack.
static void next_event(amqp_connection_state_t conn, double timeout_s, event_t* event) {
  static char* body = NULL;
  static size_t body_cap = 0;
  event->kind = 0;
  amqp_maybe_release_buffers(conn);
  struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (time_t)timeout_s) * 1e6)};
  amqp_frame_t frame;
  int status = amqp_simple_wait_frame_noblock(conn, &frame, &tv);
  if (status == AMQP_STATUS_TIMEOUT) return;
  if (status != AMQP_STATUS_OK) die("reading a frame", amqp_error_string2(status));
  if (frame.frame_type != AMQP_FRAME_METHOD) return;
  switch (frame.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
      amqp_basic_ack_t* ack = (amqp_basic_ack_t*)frame.payload.method.decoded;
      event->kind = 1;
      event->tag = ack->delivery_tag;
      event->multiple = ack->multiple;
      return;
    }
    case AMQP_BASIC_NACK_METHOD:
      die("the broker nacked a publish", NULL);
      return;
    case AMQP_BASIC_DELIVER_METHOD: {
      amqp_basic_deliver_t* deliver = (amqp_basic_deliver_t*)frame.payload.method.decoded;
      event->kind = 2;
      event->tag = deliver->delivery_tag;
      status = amqp_simple_wait_frame(conn, &frame);
      if (status != AMQP_STATUS_OK || frame.frame_type != AMQP_FRAME_HEADER) {
        die("expected a content header", NULL);
      }
      amqp_basic_properties_t* props = (amqp_basic_properties_t*)frame.payload.properties.decoded;
      event->reply_to[0] = event->correlation_id[0] = '\0';
      if (props->_flags & AMQP_BASIC_REPLY_TO_FLAG) {
        snprintf(event->reply_to, sizeof event->reply_to, "%.*s", (int)props->reply_to.len,
                 (char*)props->reply_to.bytes);
      }
      if (props->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        snprintf(event->correlation_id, sizeof event->correlation_id, "%.*s",
                 (int)props->correlation_id.len, (char*)props->correlation_id.bytes);
      }
      size_t size = (size_t)frame.payload.properties.body_size;
      if (size > body_cap) {
        body_cap = size;
        body = realloc(body, body_cap);
        if (body == NULL) die("out of memory", NULL);
      }
      size_t received = 0;
      while (received < size) {
        status = amqp_simple_wait_frame(conn, &frame);
        if (status != AMQP_STATUS_OK || frame.frame_type != AMQP_FRAME_BODY) {
          die("expected a body frame", NULL);
        }
        memcpy(body + received, frame.payload.body_fragment.bytes, frame.payload.body_fragment.len);
        received += frame.payload.body_fragment.len;
      }
      event->body = body;
      event->body_len = size;
      return;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
      die("the broker closed the channel", NULL);
    default:
      return;
  }
}

// Server: answers requests; acks each request once the broker confirmed its reply.
static int run_server(void) {
  amqp_connection_state_t conn = connect_broker(g_prefetch);
  declare_durable(conn, QUEUE);
  consume(conn, QUEUE);
  uint64_t* request_of = calloc(CAP, sizeof(uint64_t));  // reply publish seq -> request tag
  uint64_t published = 0, lowest_unconfirmed = 1;
  char* reply = NULL;
  size_t reply_cap = 0;
  printf("rabbit_rpc server ready\n");
  fflush(stdout);
  event_t event;
  for (;;) {
    next_event(conn, 1.0, &event);
    if (event.kind == 2) {
      if (event.body_len + 7 > reply_cap) {
        reply_cap = event.body_len + 7;
        reply = realloc(reply, reply_cap);
      }
      memcpy(reply, "Hello, ", 7);
      memcpy(reply + 7, event.body, event.body_len);
      publish(conn, event.reply_to, NULL, event.correlation_id, reply, event.body_len + 7);
      ++published;
      request_of[published % CAP] = event.tag;
    } else if (event.kind == 1) {
      uint64_t from = event.multiple ? lowest_unconfirmed : event.tag;
      for (uint64_t seq = from; seq <= event.tag; ++seq) {
        uint64_t request = request_of[seq % CAP];
        if (request == 0) continue;
        request_of[seq % CAP] = 0;
        if (amqp_basic_ack(conn, 1, request, 0) != AMQP_STATUS_OK) die("basic.ack", NULL);
      }
      while (lowest_unconfirmed <= published && request_of[lowest_unconfirmed % CAP] == 0) {
        ++lowest_unconfirmed;
      }
    }
  }
  return 0;
}

typedef struct {
  double start;
  double replied_at;
  int confirmed;
  int replied;
  int live;
} request_t;

// Client: closed loop of --in-flight requests.
typedef struct {
  amqp_connection_state_t conn;
  char reply_queue[64];
  request_t* requests;
  double* latencies;
  size_t latency_n, latency_cap;
  char* body;
  uint64_t published;
  int outstanding;
  int running;
  double measure_from, measure_to;
} client_t;

// Publishes request number c->published + 1, which is also its confirm sequence number.
static void publish_next(client_t* c) {
  char id[32];
  ++c->published;
  snprintf(id, sizeof id, "%llu", (unsigned long long)c->published);
  request_t* r = &c->requests[c->published % CAP];
  memset(r, 0, sizeof *r);
  r->live = 1;
  r->start = now_s();
  publish(c->conn, QUEUE, c->reply_queue, id, c->body, (size_t)g_payload);
  ++c->outstanding;
}

// Completes request `seq` once it is both confirmed and replied, and starts the next one.
static void maybe_complete(client_t* c, uint64_t seq) {
  request_t* r = &c->requests[seq % CAP];
  if (!r->live || !r->confirmed || !r->replied) return;
  r->live = 0;
  --c->outstanding;
  if (r->replied_at >= c->measure_from && r->replied_at < c->measure_to) {
    if (c->latency_n == c->latency_cap) {
      c->latency_cap *= 2;
      c->latencies = realloc(c->latencies, c->latency_cap * sizeof(double));
      if (c->latencies == NULL) die("out of memory", NULL);
    }
    c->latencies[c->latency_n++] = (r->replied_at - r->start) * 1e6;
  }
  if (c->running) publish_next(c);
}

static int run_client(void) {
  client_t c;
  memset(&c, 0, sizeof c);
  c.conn = connect_broker(g_in_flight * 2);
  declare_durable(c.conn, QUEUE);
  snprintf(c.reply_queue, sizeof c.reply_queue, "callmesh_bench_reply_%d", (int)getpid());
  declare_durable(c.conn, c.reply_queue);
  consume(c.conn, c.reply_queue);
  c.requests = calloc(CAP, sizeof(request_t));
  c.latency_cap = 1 << 20;
  c.latencies = malloc(c.latency_cap * sizeof(double));
  c.body = malloc(g_payload);
  if (c.requests == NULL || c.latencies == NULL || c.body == NULL) die("out of memory", NULL);
  memset(c.body, 'x', g_payload);
  uint64_t lowest_unconfirmed = 1;
  c.measure_from = now_s() + g_warmup;
  c.measure_to = c.measure_from + g_duration;
  c.running = 1;

  for (int i = 0; i < g_in_flight; ++i) publish_next(&c);
  event_t event;
  while (c.running || c.outstanding > 0) {
    double now = now_s();
    if (c.running && now >= c.measure_to) c.running = 0;
    if (!c.running && now >= c.measure_to + 30) break;  // give up on stragglers
    next_event(c.conn, 0.1, &event);
    if (event.kind == 1) {  // publisher confirm, for one or (multiple) all up to tag
      uint64_t from = event.multiple ? lowest_unconfirmed : event.tag;
      for (uint64_t seq = from; seq <= event.tag; ++seq) {
        request_t* r = &c.requests[seq % CAP];
        if (!r->live || r->confirmed) continue;
        r->confirmed = 1;
        maybe_complete(&c, seq);
      }
      while (lowest_unconfirmed <= c.published &&
             (!c.requests[lowest_unconfirmed % CAP].live ||
              c.requests[lowest_unconfirmed % CAP].confirmed)) {
        ++lowest_unconfirmed;
      }
    } else if (event.kind == 2) {  // a reply
      if (amqp_basic_ack(c.conn, 1, event.tag, 0) != AMQP_STATUS_OK) die("basic.ack", NULL);
      uint64_t seq = strtoull(event.correlation_id, NULL, 10);
      request_t* r = &c.requests[seq % CAP];
      if (r->live && !r->replied) {
        r->replied = 1;
        r->replied_at = now_s();
        maybe_complete(&c, seq);
      }
    }
  }
  amqp_queue_delete(c.conn, 1, amqp_cstring_bytes(c.reply_queue), 0, 0);
  print_report("rabbitmq", g_label, g_in_flight, c.latencies, c.latency_n, g_duration,
               c.outstanding);
  _exit(0);
}

int main(int argc, char** argv) {
  if (argc < 2 || (strcmp(argv[1], "server") != 0 && strcmp(argv[1], "client") != 0)) {
    fprintf(stderr,
            "usage: rabbit_rpc server|client [--host=H] [--port=P] [--prefetch=N] "
            "[--in-flight=N] [--duration=S] [--warmup=S] [--payload-bytes=N] [--label=L]\n");
    return 2;
  }
  for (int i = 2; i < argc; ++i) {
    const char* v;
    if ((v = flag_value(argv[i], "--host")))
      g_host = v;
    else if ((v = flag_value(argv[i], "--port")))
      g_port = atoi(v);
    else if ((v = flag_value(argv[i], "--prefetch")))
      g_prefetch = atoi(v);
    else if (!common_flag(argv[i], &g_in_flight, &g_duration, &g_warmup, &g_payload, &g_label)) {
      fprintf(stderr, "rabbit_rpc: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (g_in_flight < 1 || g_in_flight > 65535 || g_prefetch < 1 || g_prefetch > 65535 ||
      g_payload < 1 || g_duration <= 0) {
    fprintf(stderr,
            "rabbit_rpc: --in-flight/--prefetch 1..65535, --payload-bytes >= 1, "
            "--duration > 0\n");
    return 2;
  }
  return strcmp(argv[1], "server") == 0 ? run_server() : run_client();
}
